"""The partition count is recorded by the first process and a different one is refused
(worker, submit, CLI), until ``docgraph partitions set`` changes it with nothing in flight."""

from __future__ import annotations

import pytest

from docgraph.core.errors import ConfigError
from docgraph.core.runtime.jobs import JobStore
from docgraph.core.runtime.layout import (
    PartitionCountMismatch,
    check_partition_count,
    recorded_partition_count,
    set_partition_count,
)
from docgraph.core.runtime.worker import Worker
from docgraph.core.settings import Settings
from tests.conftest import run_cli, worker_env


async def test_the_first_submit_records_the_count_and_another_count_is_refused(settings: Settings, client):
    three = settings.model_copy(update={"partitions": 3})
    assert await recorded_partition_count(client, three) is None
    await JobStore(client, three).submit(None)
    assert await recorded_partition_count(client, three) == 3
    four = settings.model_copy(update={"partitions": 4})
    with pytest.raises(PartitionCountMismatch, match=r"DOCGRAPH_PARTITIONS=4.*use 3 partitions"):
        await JobStore(client, four).submit(None)
    with pytest.raises(PartitionCountMismatch):
        await Worker(four, [], client).run()  # refused before anything starts
    await check_partition_count(client, three)  # the right count passes


async def test_set_is_refused_while_jobs_are_in_flight_and_then_changes_the_count(settings: Settings, client):
    two = settings.model_copy(update={"partitions": 2})
    store = JobStore(client, two)
    job, _ = await store.submit(None)
    with pytest.raises(ConfigError, match=r"in flight \(1 queued\) under 2 partitions"):
        await set_partition_count(client, settings.model_copy(update={"partitions": 5}), 5)
    await store.cancel(job)
    assert await set_partition_count(client, settings.model_copy(update={"partitions": 5}), 5) == 2
    await check_partition_count(client, settings.model_copy(update={"partitions": 5}))
    with pytest.raises(PartitionCountMismatch):
        await check_partition_count(client, two)


async def test_the_cli_names_the_recorded_count(settings: Settings, client):
    await JobStore(client, settings.model_copy(update={"partitions": 2})).submit(None)
    env = {**worker_env(settings), "DOCGRAPH_PARTITIONS": "3", "COLUMNS": "200"}
    shown = run_cli(env, "partitions")
    assert shown.returncode == 0 and "recorded: 2; DOCGRAPH_PARTITIONS: 3" in shown.stdout, shown
    refused = run_cli(env, "jobs", "--state", "completed")
    assert refused.returncode == 2 and "use 2 partitions" in refused.stderr, refused
