"""What a stage is, as the runtime sees it.

A stage is a plain function (sync or async) taking a :class:`StageContext`
and returning a :class:`StageResult` (or a plain ``dict``, taken as its
output).  It never talks to Redis: the runtime records the result, hands the
job to the next stage and retries or dead-letters failures.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from docgraph.core.envelope import Envelope
    from docgraph.core.settings import Settings

StageFunc = Callable[["StageContext"], "StageResult | dict[str, Any] | None | Awaitable[Any]"]


@dataclass(frozen=True)
class StageSpec:
    """A stage contributed by a plugin through ``docgraph_add_stages``.

    ``cpu_bound`` stages run in a worker thread so the event loop keeps
    serving other jobs, heartbeats and shutdown signals.
    """

    name: str
    func: StageFunc
    cpu_bound: bool = False
    description: str = ""


@dataclass
class StageResult:
    """What a stage hands back.

    ``output`` is small JSON (large data goes to the object store and is
    referenced by URI).  ``skip`` names successor stages this job does not
    need (e.g. NER for an empty document); they count as done for joins.
    """

    output: dict[str, Any] = field(default_factory=dict)
    skip: tuple[str, ...] = ()


@dataclass
class StageContext:
    """Everything a stage may use while it runs one job."""

    envelope: Envelope
    settings: Settings
    report_progress: Callable[[float, str], None] = field(default=lambda _f, _m: None)
    services: dict[str, Any] = field(default_factory=dict)

    @property
    def job_id(self) -> str:
        return self.envelope.job_id

    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress (0..1) shown by ``docgraph status`` and the API."""
        self.report_progress(max(0.0, min(1.0, fraction)), message)

    def output_of(self, stage: str) -> dict[str, Any]:
        """The recorded output of an earlier stage of this job."""
        return self.envelope.outputs.get(stage, {})
