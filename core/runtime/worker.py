"""A worker process: one or more stage runners plus shared upkeep.

Upkeep every worker does (idempotent, so any number may run it): move due
retries back to their streams and apply retention while the system is idle.
SIGTERM / SIGINT stop reading, let in-flight jobs finish within the grace
period, hand back the rest, and return normally (exit status 0).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
from collections.abc import Iterable
from pathlib import Path

import redis.asyncio as aioredis

from docgraph.core import telemetry
from docgraph.core.runtime.connection import Scripts
from docgraph.core.runtime.jobs import now_ms
from docgraph.core.runtime.keys import Keys
from docgraph.core.runtime.runner import REDIS_DOWN, StageRunner
from docgraph.core.settings import Settings
from docgraph.core.stage import Services, StageSpec

log = logging.getLogger("docgraph.worker")

PROMOTE_BATCH = 500
LIVENESS_INTERVAL = 5.0


async def touch_liveness(path: Path, stopping: asyncio.Event, interval: float = LIVENESS_INTERVAL) -> None:
    """Keep ``path``'s mtime fresh while the event loop runs, whether Redis answers or not:
    a container's liveness probe restarts a stuck process, never one waiting out a Redis blip."""
    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    while not stopping.is_set():
        try:
            await asyncio.to_thread(path.touch)
        except OSError as exc:
            log.warning("cannot touch the liveness file %s (%s)", path, exc)
        try:
            await asyncio.wait_for(stopping.wait(), interval)
        except TimeoutError:
            pass
    await asyncio.to_thread(path.unlink, missing_ok=True)


class Upkeep:
    """Promotes due retries and trims finished jobs; safe to run anywhere, any number of times."""

    def __init__(self, settings: Settings, client: aioredis.Redis) -> None:
        self.settings = settings
        self.keys = Keys(settings.key_prefix, settings.partitions)
        self.scripts = Scripts(client)

    async def promote_due(self) -> int:
        moved = 0
        for part in self.keys.all():
            while True:
                n = int(
                    await self.scripts.call("promote", [part.delayed], [part.tag, now_ms(), PROMOTE_BATCH])
                )
                moved += n
                if n < PROMOTE_BATCH:
                    break
        return moved

    async def sweep(self) -> None:
        s = self.settings
        for part in self.keys.all():
            await self.scripts.call(
                "sweep",
                [part.state_index("completed")],
                [
                    part.tag,
                    now_ms(),
                    int(s.completed_max_age * 1000),
                    s.completed_max_count,
                    int(s.failed_max_age * 1000),
                    s.failed_max_count,
                ],
            )

    async def run(self, stopping: asyncio.Event, interval: float = 0.25) -> None:
        ticks = 0
        while not stopping.is_set():
            try:
                await self.promote_due()
                if ticks % 40 == 0:
                    await self.sweep()
            except REDIS_DOWN as exc:
                log.warning("upkeep: redis unavailable (%s)", exc)
            except Exception:
                log.exception("upkeep failed")
            ticks += 1
            try:
                await asyncio.wait_for(stopping.wait(), interval)
            except TimeoutError:
                pass


class Worker:
    """Runs the given stages in this process until stopped."""

    def __init__(
        self,
        settings: Settings,
        stages: Iterable[StageSpec],
        client: aioredis.Redis,
        *,
        services: Services | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.services = services
        self.runners = [StageRunner(spec, settings, client, services=services) for spec in stages]
        self.upkeep = Upkeep(settings, client)
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
        if self.settings.health_file is not None:
            helpers.append(asyncio.create_task(touch_liveness(self.settings.health_file, self.stopping)))
        try:
            if self.runners:
                await asyncio.gather(*(r.run() for r in self.runners))
            else:  # an upkeep-only worker: promote retries and apply retention until stopped
                await self.stopping.wait()
        finally:
            self.stopping.set()
            await asyncio.gather(*helpers)
