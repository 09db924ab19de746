"""GET /v1/jobs filters: by the stage a job is at, and by when it entered its state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from docgraph.core.runtime.jobs import JobStore
from tests.api.test_api_basics import assert_problem
from tests.runtime.helpers import running_worker, wait_for_states


async def _all_pages(http, params: dict) -> list[str]:
    """Every job id over all pages (a stage-filtered page may be short but not last)."""
    ids: list[str] = []
    page = (await http.get("/v1/jobs", params=params)).json()
    while True:
        ids += [j["id"] for j in page["jobs"]]
        if not page["next"]:
            return ids
        page = (await http.get(page["next"])).json()


async def test_filter_by_stage_and_time(api, http, client):
    store = JobStore(client, api.settings)
    before = datetime.now(UTC)
    at_ner = [(await store.submit(None, metadata={"fail": {"ner": 3}}))[0] for _ in range(3)]
    at_extract = [
        (await store.submit(None, metadata={"permanent": {"extract": "unreadable"}}))[0] for _ in range(2)
    ]
    async with running_worker(api.settings, client):
        await wait_for_states(store, at_ner, {"dead"})
        await wait_for_states(store, at_extract, {"failed"})
    after = datetime.now(UTC)

    for limit in (1, 2, 50):  # short pages are followed to the end, no gaps or repeats
        dead_at_ner = await _all_pages(http, {"state": "dead", "stage": "ner", "limit": limit})
        assert sorted(dead_at_ner) == sorted(at_ner) and len(set(dead_at_ner)) == 3
    assert await _all_pages(http, {"state": "dead", "stage": "extract"}) == []
    assert sorted(await _all_pages(http, {"state": "failed", "stage": "extract", "limit": 1})) == sorted(
        at_extract
    )
    assert await _all_pages(http, {"state": "failed", "stage": "classify"}) == []

    window = {"state": "dead", "since": before.isoformat(), "until": after.isoformat()}
    assert sorted(await _all_pages(http, window)) == sorted(at_ner)
    assert (
        await _all_pages(http, {"state": "dead", "since": (after + timedelta(seconds=1)).isoformat()}) == []
    )
    assert (
        await _all_pages(http, {"state": "dead", "until": (before - timedelta(seconds=1)).isoformat()}) == []
    )
    naive_utc = after.replace(tzinfo=None).isoformat()  # no zone: UTC
    assert sorted(await _all_pages(http, {"state": "dead", "until": naive_utc, "limit": 2})) == sorted(at_ner)

    assert_problem(await http.get("/v1/jobs", params={"state": "dead", "stage": "nope"}), 400, "no stage")
    assert_problem(
        await http.get("/v1/jobs", params={"state": "completed", "stage": "ner"}), 400, "applies to"
    )
    assert (await http.get("/v1/jobs", params={"state": "dead", "since": "yesterday-ish"})).status_code == 422
