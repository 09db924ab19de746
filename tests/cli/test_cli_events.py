"""``docgraph events`` as a real subprocess against the real redis-server."""

from __future__ import annotations

import asyncio
import json
import sys

from docgraph.core.envelope import DocumentRef
from docgraph.core.runtime.events import EventLog
from docgraph.core.runtime.jobs import JobStore
from tests.cli.test_cli import docgraph
from tests.conftest import worker_env
from tests.runtime.helpers import running_worker, wait_for_states

DOC = DocumentRef(uri="file:///docs/b.txt", name="b.txt")


async def test_follow_a_job_live_until_it_completes(settings, client):
    store = JobStore(client, settings)
    job_id, _ = await store.submit(DOC)
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "docgraph.core.cli", "events", "--follow", "--job", job_id, "--json"),
        env={**worker_env(settings), "COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        async with running_worker(settings, client):
            await wait_for_states(store, [job_id], {"completed"})
            raw, _ = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    out = raw.decode()
    assert proc.returncode == 0  # the job completed
    printed = [json.loads(line) for line in out.splitlines()]
    expected = await EventLog(client, settings).history(job_id)
    assert [p["type"] for p in printed] == [e.type for e in expected]
    assert [p["seq"] for p in printed] == list(range(1, len(expected) + 1))
    assert printed[-1]["type"] == "job.completed" and printed[0]["name"] == "b.txt"


async def test_print_filter_and_exit_statuses(settings, client):
    store = JobStore(client, settings)
    a, _ = await store.submit(DOC)
    b, _ = await store.submit(DOC)
    await store.cancel(b)
    listing = docgraph(settings, "events")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert len(lines) == 3 and "job.cancelled" in lines[2] and b in lines[2] and "b.txt" in lines[2]
    typed = docgraph(settings, "events", "--type", "job.cancelled", "--json")
    assert [json.loads(x)["job_id"] for x in typed.stdout.splitlines()] == [b]
    only_a = docgraph(settings, "events", "--job", a, "--json")
    assert [json.loads(x)["type"] for x in only_a.stdout.splitlines()] == ["job.submitted"]
    # following a job that was cancelled ends at once with status 1
    assert docgraph(settings, "events", "--follow", "--job", b).returncode == 1
    bad = docgraph(settings, "events", "--type", "job.exploded")
    assert bad.returncode == 2 and "not an event type" in bad.stderr
    assert docgraph(settings, "events", "--after", "yesterday").returncode == 2
