"""A worker process: one or more stage runners plus shared upkeep.

Every worker also runs :class:`~docgraph.core.runtime.recovery.Upkeep`
(idempotent, so any number may run it): due retries back to their streams,
retention; ``--upkeep-only`` runs nothing else.
SIGTERM / SIGINT stop reading, let in-flight jobs finish within the grace
period, hand back the rest, and return normally (exit status 0).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
from collections.abc import Iterable

import redis.asyncio as aioredis

from docgraph.core import telemetry
from docgraph.core.runtime.layout import check_partition_count
from docgraph.core.runtime.notify import Notifier
from docgraph.core.runtime.recovery import LeaseKeeper, Suspects, Upkeep
from docgraph.core.runtime.runner import StageRunner
from docgraph.core.settings import Settings
from docgraph.core.stage import Services, StageSpec

log = logging.getLogger("docgraph.worker")


class Worker:
    """Runs the given stages in this process until stopped."""

    def __init__(
        self,
        settings: Settings,
        stages: Iterable[StageSpec],
        client: aioredis.Redis,
        *,
        services: Services | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.settings = settings
        self.notifier = notifier
        self.client = client
        self.services = services
        self.runners = [StageRunner(spec, settings, client, services=services) for spec in stages]
        suspects = Suspects()  # one suspect at a time in this process, whatever its stage
        suspects.runners = list(self.runners)
        for runner in self.runners:
            runner.suspects = suspects
        self.upkeep = Upkeep(settings, client)
        visibility = min((r.visibility_ms / 1000 for r in self.runners), default=settings.visibility_timeout)
        self.lease = LeaseKeeper(settings, [r.consumer for r in self.runners], visibility)
        self.stopping = asyncio.Event()

    def stop(self) -> None:
        self.stopping.set()
        for runner in self.runners:
            runner.stop()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)

    async def _lifecycle(self, hook: str, *, raise_errors: bool) -> None:
        """Call a lifecycle hook of every plugin (``docgraph_worker_started`` /
        ``_stopping``), awaiting ``async def`` implementations.  Sync ones run in a
        thread: they may block (load a model, connect) without stalling the loop."""
        if self.services is None:
            return
        caller = getattr(self.services.plugins.hook, hook, None)
        if caller is None:  # a plugin manager without docgraph's hookspecs
            return
        offered = {"settings": self.settings, "services": self.services}
        for impl in caller.get_hookimpls():  # registration order (pluggy calls them in reverse)
            if impl.hookwrapper or impl.wrapper:
                continue
            kwargs = {name: offered[name] for name in impl.argnames}
            try:
                if inspect.iscoroutinefunction(impl.function):
                    await impl.function(**kwargs)
                else:
                    result = await asyncio.to_thread(impl.function, **kwargs)
                    if inspect.isawaitable(result):
                        await result
            except Exception:
                if raise_errors:
                    raise
                log.exception("%s of plugin %s failed", hook, impl.plugin_name)

    async def run(self) -> None:
        """Raises PartitionCountMismatch, before anything starts, on a DOCGRAPH_PARTITIONS
        other than the one this Redis's jobs use."""
        await check_partition_count(self.client, self.settings)
        try:
            await self._lifecycle("docgraph_worker_started", raise_errors=True)
            await self._run()
        finally:
            await self._lifecycle("docgraph_worker_stopping", raise_errors=False)
            if self.services is not None:
                await asyncio.to_thread(self.services.close)  # e.g. the Neo4j driver
            await telemetry.aflush()  # export this worker's last spans (no-op when tracing is off)

    async def _run(self) -> None:
        upkeep = asyncio.create_task(self.upkeep.run(self.stopping))
        helpers = [upkeep]
        if self.notifier is not None:
            helpers.append(asyncio.create_task(self.notifier.run(self.stopping)))
        self.lease.start()
        try:
            if self.runners:
                await asyncio.gather(*(r.run() for r in self.runners))
            else:  # upkeep-only or notify-only: promote retries, apply retention, deliver until stopped
                await self.stopping.wait()
        finally:
            self.stopping.set()
            await asyncio.gather(*helpers)
            await asyncio.to_thread(self.lease.stop)
