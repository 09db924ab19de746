"""Per-job Redis cost of lifecycle events: commands run inside the scripts (events on vs off,
INFO commandstats) and bytes of stream (MEMORY USAGE).  Run: python -m bench.events_cost"""

import asyncio
import tempfile
import uuid
from pathlib import Path

from docgraph.core.envelope import DocumentRef
from docgraph.core.runtime.connection import connect
from docgraph.core.runtime.jobs import JobStore
from docgraph.core.runtime.keys import Keys
from docgraph.core.settings import Settings
from tests.redis_server import RedisServer
from tests.runtime.helpers import running_worker, wait_for_states

N = 300


async def run(url, enabled):
    s = Settings(
        redis_url=url,
        key_prefix=f"m{uuid.uuid4().hex[:6]}",
        plugins=["tests.stageplugin"],
        poll_interval=0.2,
        completed_max_count=1_000_000,
        shutdown_grace=1,
        events={"enabled": enabled},
    )
    c = connect(url)
    await c.config_resetstat()
    store = JobStore(c, s)
    ids = [
        i
        for i, _ in await store.submit_many(
            [DocumentRef(uri=f"file:///d/{k}.pdf", sha256="ab" * 32, name=f"{k}.pdf") for k in range(N)]
        )
    ]
    async with running_worker(s, c):
        await wait_for_states(store, ids, {"completed"}, timeout=300)
    stats = await c.info("commandstats")
    total = sum(v["calls"] for k, v in stats.items())
    per = {
        k: v["calls"] for k, v in stats.items() if k.split("_", 1)[1] in ("xadd", "hincrby", "hmget", "hget")
    }
    mem = await c.memory_usage(Keys(s.key_prefix).part(0).events, samples=0) or 0
    xlen = await c.xlen(Keys(s.key_prefix).part(0).events)
    await c.aclose()
    return total, per, mem, xlen


async def main():
    server = RedisServer(Path(tempfile.mkdtemp())).start()
    try:
        off = await run(server.url, False)
        on = await run(server.url, True)
    finally:
        server.stop()
    print("off", off)
    print("on", on)
    print(
        "extra commands per job",
        (on[0] - off[0]) / N,
        "events per job",
        on[3] / N,
        "stream bytes per job",
        on[2] / N,
        "per event",
        on[2] / max(1, on[3]),
    )


asyncio.run(main())
