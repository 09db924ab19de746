"""Talking to Redis: connections, the Lua script registry and call batching.

Every hand-off is one ``EVALSHA`` of a typed call (:mod:`~docgraph.core.runtime.calls`).  Under load, calls that become ready while
a round trip is in flight are sent together in one pipeline (Nagle-style),
so throughput grows with load and an idle worker still answers at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from docgraph.core.runtime import lua
from docgraph.core.runtime.calls import Arg, ScriptCall

__all__ = ["REDIS_DOWN", "Arg", "Batcher", "ScriptCall", "Scripts", "connect", "connection_options"]
# What "Redis is unreachable right now" looks like: retried with backoff, never fatal
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)
log = logging.getLogger("docgraph.redis")


def mask_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``: safe to print and log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def connection_options() -> dict[str, Any]:
    """What every docgraph Redis connection shares (plain clients and FastStream's
    broker): health checks, a connect timeout, retries on dropped connections."""
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return {
        "health_check_interval": 30,
        "socket_connect_timeout": 5,
        "retry": Retry(ExponentialBackoff(cap=2, base=0.05), retries=3),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
    }


def connect(url: str, **kwargs: Any) -> aioredis.Redis:
    """A client with :func:`connection_options` (``kwargs`` override them)."""
    return aioredis.from_url(url, **{**connection_options(), **kwargs})


async def wait_until_up(client: aioredis.Redis, url: str, stopping: asyncio.Event, cap: float = 5.0) -> bool:
    """PING until Redis answers (True) or ``stopping`` is set (False, at once,
    even mid-PING).  One warning line when it does not answer, then retries
    with capped exponential backoff (0.1 s doubling up to ``cap``) and one line
    when it answers."""
    from redis.backoff import ExponentialBackoff

    backoff = ExponentialBackoff(cap=cap, base=0.1)
    stop = asyncio.ensure_future(stopping.wait())
    failures = 0
    try:
        while True:
            ping = asyncio.ensure_future(client.ping())
            await asyncio.wait({ping, stop}, return_when=asyncio.FIRST_COMPLETED)
            if stop.done():
                ping.cancel()
                await asyncio.gather(ping, return_exceptions=True)
                return False
            try:
                ping.result()
            except REDIS_DOWN as exc:
                if failures == 0:
                    log.warning(
                        "Redis at %s (DOCGRAPH_REDIS_URL) does not answer (%s); waiting for it, "
                        "retrying with backoff up to %g s",
                        mask_url(url),
                        exc,
                        cap,
                    )
                failures += 1
                await asyncio.wait({stop}, timeout=backoff.compute(failures))
                if stop.done():
                    return False
                continue
            if failures:
                log.warning("Redis at %s answers after %d attempts; starting", mask_url(url), failures + 1)
            return True
    finally:
        stop.cancel()


class Scripts:
    """Named Lua scripts, loaded lazily and reloaded after a Redis restart."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self.sha = {name: hashlib.sha1(src.encode()).hexdigest() for name, src in lua.ALL.items()}

    async def load(self) -> None:
        for src in lua.ALL.values():
            await self.client.script_load(src)

    async def run(self, call: ScriptCall) -> Any:
        """Run one script call (see :mod:`~docgraph.core.runtime.calls`)."""
        keys, args = call.keys(), call.args()
        try:
            return await self.client.evalsha(self.sha[call.script], len(keys), *keys, *args)
        except NoScriptError:
            return await self.client.eval(lua.ALL[call.script], len(keys), *keys, *args)

    async def call_many(self, calls: Sequence[ScriptCall]) -> list[Any]:
        """Run several script calls in one round trip; results (or exceptions) in order."""
        if len(calls) == 1:
            try:
                return [await self.run(calls[0])]
            except ResponseError as exc:
                return [exc]
        results: list[Any] = await self._pipeline(calls)
        missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        if missing:  # Redis restarted and lost its script cache
            await self.load()
            retried = await self._pipeline([calls[i] for i in missing])
            for i, r in zip(missing, retried, strict=True):
                results[i] = r
        return results

    async def _pipeline(self, calls: Sequence[ScriptCall]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for call in calls:
            keys = call.keys()
            pipe.evalsha(self.sha[call.script], len(keys), *keys, *call.args())
        return list(await pipe.execute(raise_on_error=False))


class Batcher:
    """Coalesces script calls made concurrently into pipelined round trips.

    At most one round trip is in flight, so calls reach Redis in the order they
    were made.  An idle batcher sends a call at once from the caller's own task
    (no task, no future: a lone awaited call costs what ``EVALSHA`` costs); calls
    made meanwhile queue up and go together when it returns.  A call made with
    ``defer=True`` waits one turn of the event loop for company: a stage's
    ``start`` record is deferred, so a stage that returns at once sends its
    start and its hand-off in one round trip.
    """

    def __init__(self, scripts: Scripts, max_batch: int = 256) -> None:
        self.scripts = scripts
        self.max_batch = max_batch
        self._queue: list[tuple[ScriptCall, asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._direct = False  # a call is in flight from its caller's task
        self._kick_pending = False  # a deferred flush is scheduled

    def _busy(self) -> bool:
        return self._direct or self._kick_pending or (self._flusher is not None and not self._flusher.done())

    async def run(self, call: ScriptCall, *, defer: bool = False) -> Any:
        """Run ``call``, pipelined with the calls made while a round trip is in flight."""
        if not defer and not self._busy():
            self._direct = True
            try:
                return await self.scripts.run(call)
            finally:
                self._direct = False
                if self._queue and not self._busy():
                    self._flusher = asyncio.create_task(self._flush())
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((call, future))
        if not self._busy():
            if defer:
                self._kick_pending = True
                asyncio.get_running_loop().call_soon(self._kick)
            else:
                self._flusher = asyncio.create_task(self._flush())
        return await future

    def _kick(self) -> None:
        self._kick_pending = False
        if self._queue and not self._busy():
            self._flusher = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            try:
                results = await self.scripts.call_many([call for call, _ in batch])
            except Exception as exc:  # connection lost: every caller sees it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def aclose(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
