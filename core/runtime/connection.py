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
from typing import Any, TypeAlias, cast

import redis
import redis.asyncio as aioredis
from redis.exceptions import (
    ClusterDownError,
    NoScriptError,
    RedisClusterException,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from docgraph.core.runtime import lua
from docgraph.core.runtime.calls import Arg, ScriptCall, cached_arg
from docgraph.core.settings import RedisTlsSettings, Settings, mask_redis_url

__all__ = [
    "REDIS_DOWN",
    "Arg",
    "Batcher",
    "NotReplicated",
    "RedisConfigError",
    "ScriptCall",
    "Scripts",
    "connect",
    "connect_sync",
    "connection_options",
    "describe_failure",
    "torn_down",
]


class NotReplicated(RedisTimeoutError):
    """A round trip's writes were applied by the master, but fewer replicas than
    ``DOCGRAPH_REDIS_WAIT_REPLICAS`` confirmed them within ``DOCGRAPH_REDIS_WAIT_TIMEOUT_MS``
    (or the confirmation could not be tied to the connection that carried them): a
    failover now could lose them.  A ``TimeoutError``, so part of :data:`REDIS_DOWN`:
    nothing is reported done that is not replicated, and callers retry as after a
    lost connection (a submit with its idempotency key finds the same job; a
    hand-off's entry is taken back or was already acknowledged)."""


# What "Redis is unreachable right now" looks like: retried with backoff, never fatal.
# On a cluster, a failover in progress looks the same: CLUSTERDOWN / MASTERDOWN while a
# replica is promoted, TRYAGAIN during a resharding, a slot no node serves yet.
REDIS_DOWN = (
    RedisConnectionError,
    RedisTimeoutError,
    ConnectionError,
    OSError,
    ClusterDownError,
    TryAgainError,
    SlotNotCoveredError,
)
log = logging.getLogger("docgraph.redis")


def torn_down(exc: BaseException) -> bool:
    """Whether ``exc`` is a connection redis-py's asyncio client lost under a command,
    leaked as ``AttributeError``/``TypeError`` instead of ``ConnectionError`` (redis-py
    8.1: ``'NoneType' object has no attribute 'writelines'`` while a cluster node is
    killed; redis/redis-py#4287).  Only errors raised inside redis-py's connection
    code or asyncio's transports count: a bug of ours still raises."""
    if not isinstance(exc, AttributeError | TypeError) or exc.__traceback__ is None:
        return False
    tb = exc.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    where = tb.tb_frame.f_code.co_filename.replace("\\", "/")
    return where.endswith(("redis/asyncio/connection.py", "asyncio/streams.py", "asyncio/selector_events.py"))


def mask_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``: safe to print and log."""
    return mask_redis_url(url)


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


Target: TypeAlias = "Settings | str"


def _settings(target: Target) -> Settings:
    """``target`` as settings: a bare URL means default TLS options (system CAs)."""
    if isinstance(target, Settings):
        return target
    return Settings.model_construct(redis_url=target, redis_tls=RedisTlsSettings())


def client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of a redis-py client for the target's auth, database and TLS
    (the host part is the mode's business: URL, seed nodes or Sentinel discovery)."""
    target = settings.redis_target
    options: dict[str, Any] = {"username": target.username, "password": target.password}
    if target.tls:
        options |= {"ssl": True, **settings.redis_tls.redis_py_options()}
    return options


def connect(target: Target, **kwargs: Any) -> aioredis.Redis:
    """The asyncio client for ``target`` (settings, or a URL with default TLS options),
    with :func:`connection_options` (``kwargs`` override them).

    * ``redis://``, ``rediss://``, ``unix://``: one server (``from_url``);
    * ``redis+cluster://h1:p1,h2:p2``: a ``RedisCluster`` from those seed nodes;
    * ``redis+sentinel://h1:p1,h2:p2/<master>``: the master Sentinel names (followed on failover).

    A cluster client is typed as ``Redis``: it offers the same commands, but
    multi-key calls must stay in one slot (every key of a partition does)."""
    settings = _settings(target)
    t = settings.redis_target
    options = {**connection_options(), **kwargs}
    if t.mode == "single":
        tls = settings.redis_tls.redis_py_options() if t.tls else {}
        return aioredis.from_url(t.url, **{**tls, **options})
    if t.mode == "cluster":
        from redis.asyncio.cluster import ClusterNode, RedisCluster

        options.pop("health_check_interval", None)  # per node, set through the nodes' pools
        cluster = RedisCluster(
            startup_nodes=[ClusterNode(h, p) for h, p in t.nodes],
            **{**client_options(settings), **options},
        )
        return cast(aioredis.Redis, cluster)
    from redis.asyncio.sentinel import Sentinel

    auth = client_options(settings)
    sentinel_options = {k: v for k, v in auth.items() if k.startswith("ssl")}  # Sentinels speak TLS too
    sentinel_options |= {k: v for k, v in options.items() if k.startswith("socket_")}
    sentinel = Sentinel(list(t.nodes), sentinel_kwargs=sentinel_options, **{**auth, **options})
    return sentinel.master_for(t.master, db=t.db)


def connect_sync(target: Target, **kwargs: Any) -> redis.Redis:
    """The blocking client for ``target`` (lease renewals from a thread, probes):
    the same modes and TLS options as :func:`connect`, no shared retry policy."""
    settings = _settings(target)
    t = settings.redis_target
    if t.mode == "single":
        tls = settings.redis_tls.redis_py_options() if t.tls else {}
        return redis.Redis.from_url(t.url, **{**tls, **kwargs})
    if t.mode == "cluster":
        from redis.cluster import ClusterNode, RedisCluster

        nodes = [ClusterNode(h, p) for h, p in t.nodes]
        return cast(redis.Redis, RedisCluster(startup_nodes=nodes, **{**client_options(settings), **kwargs}))
    from redis.sentinel import Sentinel

    auth = client_options(settings)
    sentinel_options = {k: v for k, v in auth.items() if k.startswith("ssl")}
    sentinel_options |= {k: v for k, v in kwargs.items() if k.startswith("socket_")}
    sentinel = Sentinel(list(t.nodes), sentinel_kwargs=sentinel_options, **{**auth, **kwargs})
    return sentinel.master_for(t.master, db=t.db)


def describe_failure(target: Target, exc: BaseException) -> str:
    """Why Redis at ``target`` cannot be used, in one line naming the URL (masked) and
    the setting to change: a certificate the CA does not vouch for, a plaintext
    client at a TLS port, a TLS client at a plaintext port, a wrong password."""
    settings = _settings(target)
    where = mask_url(settings.redis_url)
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = reason.lower()
    if "certificate verify failed" in text or "certificate_verify_failed" in text:
        ca = settings.redis_tls.ca_file
        ca_text = (
            f"DOCGRAPH_REDIS_TLS__CA_FILE={str(ca)!r}"
            if ca
            else "the system CAs (DOCGRAPH_REDIS_TLS__CA_FILE unset)"
        )
        return (
            f"TLS to Redis at {where} (DOCGRAPH_REDIS_URL) failed: the server's certificate is not "
            f"trusted by {ca_text} ({reason.rstrip('.')}); point DOCGRAPH_REDIS_TLS__CA_FILE at the CA "
            "that signed it"
        )
    if settings.redis_target.tls and ("wrong version number" in text or "record layer failure" in text):
        return (
            f"TLS to Redis at {where} (DOCGRAPH_REDIS_URL) failed ({reason.rstrip('.')}): the port "
            "does not speak TLS; use redis:// for a plaintext port, or the server's tls-port"
        )
    if "tlsv13 alert certificate required" in text or "alert certificate required" in text:
        return (
            f"Redis at {where} (DOCGRAPH_REDIS_URL) requires a client certificate ({reason.rstrip('.')}); "
            "set DOCGRAPH_REDIS_TLS__CERT_FILE and DOCGRAPH_REDIS_TLS__KEY_FILE"
        )
    hint = ""
    # TLS 1.3: a server that wants a client certificate may drop the connection after the
    # handshake instead of sending its alert; the client then sees a reset, a close or an EOF
    dropped = any(s in text for s in ("closed by server", "reset by peer", "eof occurred in violation"))
    if dropped and not settings.redis_target.tls:
        hint = "; if that port speaks TLS, use rediss:// (and DOCGRAPH_REDIS_TLS__CA_FILE)"
    elif dropped and settings.redis_tls.cert_file is None:
        hint = (
            "; if the server requires a client certificate (tls-auth-clients), set "
            "DOCGRAPH_REDIS_TLS__CERT_FILE and DOCGRAPH_REDIS_TLS__KEY_FILE"
        )
    return f"Redis at {where} (DOCGRAPH_REDIS_URL) does not answer ({reason.rstrip('.')}){hint}"


def is_tls_misconfigured(exc: BaseException) -> bool:
    """Whether ``exc`` is a TLS failure that retrying cannot fix (an untrusted
    certificate, a missing client certificate): report it and stop."""
    text = str(exc).lower()
    return any(
        s in text
        for s in ("certificate verify failed", "certificate_verify_failed", "alert certificate required")
    )


class RedisConfigError(Exception):
    """Redis answers but refuses this configuration (an untrusted certificate, a
    missing client certificate): retrying cannot help.  The message is one line."""


async def wait_until_up(
    client: aioredis.Redis, url: Target, stopping: asyncio.Event, cap: float = 5.0
) -> bool:
    """PING until Redis answers (True) or ``stopping`` is set (False, at once,
    even mid-PING).  One warning line when it does not answer, then retries
    with capped exponential backoff (0.1 s doubling up to ``cap``) and one line
    when it answers.  A TLS set-up the server rejects raises
    :class:`RedisConfigError` at once (``url``: the settings or the URL)."""
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
                if is_tls_misconfigured(exc):
                    raise RedisConfigError(describe_failure(url, exc)) from exc
                if failures == 0:
                    log.warning(
                        "%s; waiting for it, retrying with backoff up to %g s",
                        describe_failure(url, exc),
                        cap,
                    )
                failures += 1
                await asyncio.wait({stop}, timeout=backoff.compute(failures))
                if stop.done():
                    return False
                continue
            if failures:
                where = mask_url(_settings(url).redis_url)
                log.warning("Redis at %s answers after %d attempts; starting", where, failures + 1)
            return True
    finally:
        stop.cancel()


class Scripts:
    """Named Lua scripts, loaded lazily and reloaded after a Redis restart.

    With ``settings.redis_wait_replicas`` N > 0 every round trip ends with
    ``WAIT N timeout`` in the same pipeline, so on the connection that carried its
    writes (WAIT counts only the calling connection's writes); on a cluster, one
    WAIT per node the pipeline wrote to.  Calls whose writes are not confirmed by N
    replicas come back as :class:`NotReplicated`.  N = 0 (the default) costs nothing."""

    def __init__(self, client: aioredis.Redis, settings: Settings | None = None) -> None:
        self.client = client
        self.sha = {name: hashlib.sha1(src.encode()).hexdigest() for name, src in lua.ALL.items()}
        self._sha_bytes = {name: sha.encode() for name, sha in self.sha.items()}  # sent as is
        self.wait_replicas = settings.redis_wait_replicas if settings is not None else 0
        self.wait_timeout_ms = settings.redis_wait_timeout_ms if settings is not None else 0
        self._cluster = _is_cluster(client)

    async def load(self) -> None:
        for src in lua.ALL.values():
            await self.client.script_load(src)

    async def run(self, call: ScriptCall) -> Any:
        """Run one script call (see :mod:`~docgraph.core.runtime.calls`)."""
        if self.wait_replicas:  # EVALSHA + WAIT: a pipeline, so both use one connection
            result = (await self.call_many([call]))[0]
            if isinstance(result, Exception):
                raise result
            return result
        keys, args = call.keys(), call.args()
        try:
            # EVALSHA itself (what ``evalsha`` sends), with the sha and key count as bytes
            return await self.client.execute_command(
                "EVALSHA", self._sha_bytes[call.script], cached_arg(len(keys)), *keys, *args
            )
        except NoScriptError:
            return await self.client.eval(lua.ALL[call.script], len(keys), *keys, *args)

    async def call_many(self, calls: Sequence[ScriptCall]) -> list[Any]:
        """Run several script calls in one round trip; results (or exceptions) in order."""
        if len(calls) == 1 and not self.wait_replicas:
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
            # execute_command, not pipe.evalsha: redis-py's ClusterPipeline blocks the
            # script methods but routes a raw EVALSHA by its KEYS (one partition: one slot)
            pipe.execute_command(
                "EVALSHA", self._sha_bytes[call.script], cached_arg(len(keys)), *keys, *call.args()
            )
        if not self.wait_replicas:
            return list(await pipe.execute(raise_on_error=False))
        if self._cluster:
            return await self._pipeline_cluster_wait(pipe, calls)
        pipe.execute_command("WAIT", self.wait_replicas, self.wait_timeout_ms)
        *results, acked = await pipe.execute(raise_on_error=False)
        return [self._confirmed(r, acked) for r in results]

    async def _pipeline_cluster_wait(self, pipe: Any, calls: Sequence[ScriptCall]) -> list[Any]:
        """The cluster pipeline with one WAIT per node it writes to.

        redis-py's ClusterPipeline sends each node's commands on one connection, in
        order, so a WAIT targeted at that node follows its writes.  What that WAIT
        does not cover counts as not replicated: a call redis-py redirected (``MOVED``:
        run on another node, another connection), and every call when the slot map was
        refreshed meanwhile (redis-py re-sends the unsent part of a pipeline after a
        connection error, and a re-sent WAIT has lost its target).  ``ASK`` and
        ``TRYAGAIN`` (a resharding in progress) are followed unseen: docs/runtime.md."""
        cluster: Any = self.client
        await cluster.initialize()  # the slot map, to route each WAIT like its writes
        epoch = getattr(cluster.nodes_manager, "_epoch", None)  # bumped by every slot-map refresh
        nodes = [cluster.get_node_from_key(call.keys()[0]) for call in calls]
        targets = list({n.name: n for n in nodes}.values())
        for node in targets:
            pipe.execute_command("WAIT", self.wait_replicas, self.wait_timeout_ms, target_nodes=node)
        try:
            replies = list(await pipe.execute(raise_on_error=False))
        except RedisClusterException as exc:
            raise NotReplicated(f"the cluster pipeline failed ({exc})") from exc
        results, acks = replies[: len(calls)], replies[len(calls) :]
        acked: dict[str, Any] = {node.name: ack for node, ack in zip(targets, acks, strict=True)}
        if epoch is None or getattr(cluster.nodes_manager, "_epoch", None) != epoch:
            refreshed = NotReplicated("the cluster's slot map was refreshed during the round trip")
            acked = dict.fromkeys(acked, refreshed)
        out = []
        for call, node, result in zip(calls, nodes, results, strict=True):
            try:
                ack = acked[node.name] if cluster.get_node_from_key(call.keys()[0]) is node else None
            except SlotNotCoveredError:
                ack = None
            if ack is None:  # the slot moved while the call was out: run on another connection
                ack = NotReplicated("the call was redirected to another node (MOVED)")
            out.append(self._confirmed(result, ack))
        return out

    def _confirmed(self, result: Any, acked: Any) -> Any:
        """``result``, or :class:`NotReplicated` when its writes lack the replicas WAIT
        asked for (``acked``: WAIT's reply, or the error in its place)."""
        if isinstance(result, Exception):
            return result  # an error is never reported done (and our scripts fail before writing)
        if isinstance(acked, ResponseError) and not isinstance(acked, REDIS_DOWN):
            return acked  # WAIT refused (NOPERM: an ACL without +wait): retrying cannot help
        if isinstance(acked, Exception):
            return NotReplicated(f"WAIT {self.wait_replicas} {self.wait_timeout_ms} failed: {acked}")
        if int(acked) < self.wait_replicas:
            return NotReplicated(
                f"{int(acked)} of {self.wait_replicas} replicas (DOCGRAPH_REDIS_WAIT_REPLICAS) confirmed "
                f"the writes within {self.wait_timeout_ms} ms (DOCGRAPH_REDIS_WAIT_TIMEOUT_MS); "
                "they may be lost on failover"
            )
        return result


def _is_cluster(client: Any) -> bool:
    """Whether ``client`` is redis-py's asyncio ``RedisCluster`` (typed as ``Redis`` here)."""
    from redis.asyncio.cluster import RedisCluster

    return isinstance(client, RedisCluster)


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
