"""Peer task queues for ``bench/runtime.py``: Taskiq (taskiq-redis streams) and Dramatiq (Redis).

Each is the same 3-stage chain as the raw and FastStream rows: task ``a``
enqueues ``b``, ``b`` enqueues ``c``, and ``c`` INCRs ``<prefix>:done``. The
factories build the app for both sides (the workers and the producer); the
``*_worker`` functions are the worker processes' main loops. Bench-only
dependencies: ``uv pip install -e ".[bench]"``.

Settings (production-ish, as the projects document them):

- Taskiq: ``RedisStreamBroker`` (consumer group, XREADGROUP COUNT 100, XACK
  after the task ran: the receiver's default ``ack_type`` WHEN_SAVED with no
  result backend), ``max_async_tasks=100``, ``max_prefetch=100``; unacked
  entries idle 10 min are XAUTOCLAIMed (the broker's default).
- Dramatiq: ``RedisBroker`` with the default middleware (retries, age and
  time limits, callbacks, pipelines), ``Worker(worker_threads=8)`` (the CLI's
  default ``--threads``), default prefetch (2 x threads) and
  ``worker_timeout`` (1 s; the idle consumer backs off up to that); messages
  are acked after the actor returns.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from typing import Any

TQ_CONCURRENCY = 100
TQ_PREFETCH = 100
DQ_THREADS = 8


def tq_stream(prefix: str) -> str:
    return f"{prefix}:tq"


def dq_namespace(prefix: str) -> str:
    return f"{prefix}-dq"


def make_taskiq(url: str, prefix: str) -> tuple[Any, dict[str, Any]]:
    """The Taskiq broker and its chain's tasks {"a", "b", "c"}."""
    import redis.asyncio as aioredis
    from taskiq_redis import RedisStreamBroker

    broker = RedisStreamBroker(
        url, queue_name=tq_stream(prefix), consumer_group_name="bench", xread_count=100
    )
    done_key = f"{prefix}:done"
    counter: dict[str, Any] = {}

    @broker.task(task_name="c")
    async def c(body: dict[str, Any]) -> None:
        client = counter.get("c")
        if client is None:
            client = counter["c"] = aioredis.Redis.from_url(url)
        await client.incr(done_key)

    @broker.task(task_name="b")
    async def b(body: dict[str, Any]) -> None:
        await c.kiq(body)

    @broker.task(task_name="a")
    async def a(body: dict[str, Any]) -> None:
        await b.kiq(body)

    return broker, {"a": a, "b": b, "c": c}


def make_dramatiq(url: str, prefix: str) -> tuple[Any, dict[str, Any]]:
    """The Dramatiq broker and its chain's actors {"a", "b", "c"}."""
    import dramatiq
    import redis
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=url, namespace=dq_namespace(prefix))
    dramatiq.set_broker(broker)
    counter = redis.Redis.from_url(url)
    done_key = f"{prefix}:done"

    def c(body: dict[str, Any]) -> None:
        counter.incr(done_key)

    actor_c = dramatiq.actor(c, actor_name="c", queue_name="bench", broker=broker)

    def b(body: dict[str, Any]) -> None:
        actor_c.send(body)

    actor_b = dramatiq.actor(b, actor_name="b", queue_name="bench", broker=broker)

    def a(body: dict[str, Any]) -> None:
        actor_b.send(body)

    actor_a = dramatiq.actor(a, actor_name="a", queue_name="bench", broker=broker)
    return broker, {"a": actor_a, "b": actor_b, "c": actor_c}


async def taskiq_worker(url: str, prefix: str) -> None:
    """One Taskiq worker process: the receiver loop until SIGTERM."""
    import redis.asyncio as aioredis
    from taskiq.api import run_receiver_task

    broker, _ = make_taskiq(url, prefix)
    broker.is_worker_process = True
    await broker.startup()
    task = asyncio.create_task(
        run_receiver_task(broker, max_async_tasks=TQ_CONCURRENCY, max_prefetch=TQ_PREFETCH, run_startup=False)
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    client = aioredis.Redis.from_url(url)
    await client.incr(f"{prefix}:ready")
    await client.aclose()
    await stop.wait()
    task.cancel()
    await asyncio.wait([task], timeout=3)
    await broker.shutdown()


def dramatiq_worker(url: str, prefix: str) -> None:
    """One Dramatiq worker process (its threads) until SIGTERM."""
    import dramatiq
    import redis

    broker, _ = make_dramatiq(url, prefix)
    broker.emit_after("process_boot")
    worker = dramatiq.Worker(broker, worker_threads=DQ_THREADS)
    worker.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    redis.Redis.from_url(url).incr(f"{prefix}:ready")
    while not stop.wait(0.5):
        pass
    worker.stop(timeout=3000)
    broker.emit_before("process_stop")
    broker.close()
    os._exit(0)  # Dramatiq's non-daemon helper threads would keep the process up
