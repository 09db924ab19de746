"""What a stage is, as the runtime sees it.

A stage is a plain function (sync or async) taking a :class:`StageContext`
and returning a :class:`StageResult` (or a plain ``dict``, taken as its
output).  It never talks to Redis: the runtime records the result, hands the
job to the next stage and retries or dead-letters failures.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

if TYPE_CHECKING:  # types only: the contract imports no subpackage at run time
    import pluggy

    from docgraph.core.envelope import Envelope
    from docgraph.core.settings import RetryPolicy, Settings
    from docgraph.core.store import ObjectStore
    from docgraph.plugins.types import GraphSink

M = TypeVar("M", bound="BaseModel")

StageFunc = Callable[["StageContext"], "StageResult | dict[str, Any] | None | Awaitable[Any]"]


@dataclass(frozen=True)
class StageSpec:
    """A stage contributed by a plugin through ``docgraph_add_stages``.

    A plain (sync) ``func`` always runs in a worker thread, so the event loop
    keeps serving other jobs, heartbeats and shutdown signals however long it
    takes; ``cpu_bound`` is kept for compatibility and no longer changes that.
    An ``async def`` stage runs on the event loop and must not block it.

    Where it runs, when ``DOCGRAPH_TOPOLOGY`` is not set (an explicit
    topology always wins and these two are then ignored):

    * ``after``: the stages it waits for.  ``None`` (the default) does not
      place the stage: it runs only if a topology names it; ``()`` makes it
      a root.
    * ``before``: stages that must also wait for it (it is added to their
      predecessors), e.g. ``StageSpec("summarize", f, after=("extract",),
      before=("ingest",))`` puts a stage between extract and ingest.

    Its runtime defaults, each overridden by ``DOCGRAPH_STAGES__<name>__<field>``
    and falling back to the global setting when ``None``: ``concurrency``,
    ``retry``, ``visibility_timeout``, ``max_deliveries``.
    """

    name: str
    func: StageFunc
    cpu_bound: bool = False
    description: str = ""
    after: tuple[str, ...] | None = None
    before: tuple[str, ...] = ()
    concurrency: int | None = None
    retry: RetryPolicy | None = None
    visibility_timeout: float | None = None
    max_deliveries: int | None = None

    def __post_init__(self) -> None:
        # after="extract" means ("extract",), not a stage per letter
        for name in ("after", "before"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, (value,))
            elif value is not None:
                object.__setattr__(self, name, tuple(value))

    @property
    def placed(self) -> bool:
        """Whether the stage asks to be inserted into the default topology."""
        return self.after is not None or bool(self.before)


@dataclass
class StageResult:
    """What a stage hands back.

    ``output`` is small JSON (large data goes to the object store and is
    referenced by URI).  ``skip`` names successor stages this job does not
    need (e.g. NER for an empty document); they count as done for joins.
    """

    output: dict[str, Any] = field(default_factory=dict)
    skip: tuple[str, ...] = ()


@dataclass(frozen=True)
class Services:
    """What a worker process builds once from the settings and every stage shares."""

    objects: ObjectStore
    plugins: pluggy.PluginManager
    graph: GraphSink | None = None

    def close(self) -> None:
        """Release connections (the graph sink's driver) when the worker stops."""
        if self.graph is not None:
            self.graph.close()


@dataclass
class StageContext:
    """Everything a stage may use while it runs one job."""

    envelope: Envelope
    settings: Settings
    services: Services
    report_progress: Callable[[float, str], None] = field(default=lambda _f, _m: None)
    #: set by the runtime when the job is cancelled while this stage runs
    cancel_event: threading.Event = field(default_factory=threading.Event)

    @property
    def job_id(self) -> str:
        return self.envelope.job_id

    @property
    def objects(self) -> ObjectStore:
        """The object store: documents and artifacts (claim checks)."""
        return self.services.objects

    @property
    def plugins(self) -> pluggy.PluginManager:
        """The plugin manager, for stages that call hooks (extractors, entity packs)."""
        return self.services.plugins

    @property
    def graph(self) -> GraphSink:
        """The configured graph sink; a ConfigError when no plugin provides one."""
        if self.services.graph is None:
            from docgraph.core.errors import ConfigError

            raise ConfigError(
                f"no graph sink for DOCGRAPH_GRAPH_SINK={self.settings.graph_sink!r}: "
                "install or list the plugin that provides it"
            )
        return self.services.graph

    @property
    def cancelled(self) -> bool:
        """True once the job was cancelled: stop and return (or let ``progress`` raise)."""
        return self.cancel_event.is_set()

    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress (0..1) shown by ``docgraph status`` and the API.

        Raises :class:`~docgraph.core.errors.JobCancelled` once the job was
        cancelled, so a long sync stage that reports progress stops there (an
        async stage is cancelled as a task as well)."""
        if self.cancel_event.is_set():
            from docgraph.core.errors import JobCancelled

            raise JobCancelled(f"job {self.job_id} was cancelled")
        self.report_progress(max(0.0, min(1.0, fraction)), message)

    def plugin_settings(self, namespace: str, model: type[M] | None = None) -> M:
        """A plugin's typed settings (``docgraph_settings_model``), read from
        ``DOCGRAPH_<NAMESPACE>__<FIELD>``; ``model`` checks (and types) the result."""
        return self.settings.plugin(namespace, model)

    def output_of(self, stage: str) -> dict[str, Any]:
        """The recorded output of an earlier stage of this job."""
        return self.envelope.outputs.get(stage, {})
