"""The stage graph: which stage follows which, and where jobs join."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from graphlib import CycleError, TopologicalSorter


class Topology:
    """A DAG of stages given as ``{stage: [predecessors]}``.

    Roots receive new jobs; a stage with several predecessors is a join and
    runs once all of them are done (or skipped); a job is complete when every
    stage is done or skipped.
    """

    def __init__(self, predecessors: Mapping[str, Iterable[str]]) -> None:
        self.predecessors: dict[str, tuple[str, ...]] = {
            stage: tuple(preds) for stage, preds in predecessors.items()
        }
        if not self.predecessors:
            raise ValueError("the topology names no stage")
        for stage, preds in self.predecessors.items():
            missing = [p for p in preds if p not in self.predecessors]
            if missing:
                raise ValueError(
                    f"topology: stage {stage!r} waits for {missing}, which are not stages "
                    f"(known: {sorted(self.predecessors)})"
                )
            if stage in preds:
                raise ValueError(f"topology: stage {stage!r} cannot follow itself")
        try:
            self.order: tuple[str, ...] = tuple(TopologicalSorter(self.predecessors).static_order())
        except CycleError as exc:
            raise ValueError(f"topology has a cycle: {' -> '.join(exc.args[1])}") from None
        self.successors: dict[str, tuple[str, ...]] = {
            stage: tuple(s for s in self.order if stage in self.predecessors[s]) for stage in self.order
        }
        self.roots = tuple(s for s in self.order if not self.predecessors[s])

    @property
    def stages(self) -> tuple[str, ...]:
        return self.order

    def candidates_after(self, stage: str, skipped: Iterable[str] = ()) -> tuple[str, ...]:
        """Stages that may become ready when ``stage`` finishes and ``skipped`` are skipped.

        Skipping a stage also skips everything that only it leads to, so the
        closure of skipped stages is returned through :meth:`skip_closure`.
        """
        skip = set(self.skip_closure(skipped))
        ready: list[str] = []
        for s in (stage, *skip):
            for succ in self.successors[s]:
                if succ not in skip and succ not in ready:
                    ready.append(succ)
        return tuple(ready)

    def skip_closure(self, skipped: Iterable[str]) -> tuple[str, ...]:
        """``skipped`` plus successors all of whose predecessors are skipped."""
        skip = set(skipped)
        for s in self.order:
            preds = self.predecessors[s]
            if preds and all(p in skip for p in preds):
                skip.add(s)
        return tuple(s for s in self.order if s in skip)
