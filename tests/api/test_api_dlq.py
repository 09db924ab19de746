"""Dead letters over HTTP: list, show, replay by id and all, purge with confirmation."""

from __future__ import annotations

from docgraph.core.runtime.jobs import JobStore
from tests.api.test_api_basics import assert_problem
from tests.runtime.helpers import running_worker, wait_for_states


async def test_dead_letters_list_show_replay_purge(api, http, client):
    store = JobStore(client, api.settings)
    # ner fails 3 times (= attempts): dead; a replay's 4th call succeeds
    ids = [(await store.submit(None, metadata={"fail": {"ner": 3}}))[0] for _ in range(3)]
    async with running_worker(api.settings, client):
        await wait_for_states(store, ids, {"dead"})

        page = (await http.get("/v1/dlq/ner")).json()
        assert page["stage"] == "ner" and page["count"] == 3 and page["next_after"] is None
        letters = page["letters"]
        assert sorted(lt["job_id"] for lt in letters) == sorted(ids)
        assert all(lt["error_type"] == "RuntimeError" and "injected" in lt["error"] for lt in letters)

        first = (await http.get("/v1/dlq/ner", params={"limit": 1})).json()
        assert len(first["letters"]) == 1 and first["next_after"] == letters[0]["id"]
        rest = (await http.get("/v1/dlq/ner", params={"after": first["next_after"]})).json()
        assert [lt["id"] for lt in rest["letters"]] == [lt["id"] for lt in letters[1:]]

        shown = await http.get(f"/v1/dlq/ner/{letters[0]['id']}")
        assert shown.status_code == 200 and "Traceback" in shown.json()["traceback"]
        assert_problem(await http.get("/v1/dlq/ner/0/1-0"), 404, "no dead letter")
        assert_problem(await http.get("/v1/dlq/ner/zzz"), 400, "refs look like")
        assert_problem(await http.get("/v1/dlq/ner/7/1-0"), 400)  # one partition only

        # replay one by id: same job completes
        r = await http.post("/v1/dlq/ner/replay", json={"ids": [letters[0]["id"]]})
        assert r.status_code == 200 and r.json() == {"replayed": 1}
        await wait_for_states(store, [letters[0]["job_id"]], {"completed"})
        assert (await http.get("/v1/dlq/ner")).json()["count"] == 2

        # replay all
        r = await http.post("/v1/dlq/ner/replay", json={"all": True})
        assert r.json() == {"replayed": 2}
        await wait_for_states(store, ids, {"completed"})
        job = (await http.get(f"/v1/jobs/{ids[1]}")).json()
        ner = next(s for s in job["stages"] if s["name"] == "ner")
        assert ner["status"] == "done"

        # bad replay requests
        assert_problem(await http.post("/v1/dlq/ner/replay", json={}), 400, '"all": true')
        assert_problem(await http.post("/v1/dlq/ner/replay", json={"ids": ["0/1-0"], "all": True}), 400)
        assert_problem(await http.post("/v1/dlq/ner/replay", json={"ids": []}), 400)
        assert_problem(await http.post("/v1/dlq/ner/replay", json={"ids": ["x"]}), 400, "refs look like")
        assert_problem(await http.post("/v1/dlq/ner/replay", json={"idz": ["x"]}), 422)
        assert (await http.post("/v1/dlq/ner/replay", json={"ids": ["0/1-0"]})).json() == {"replayed": 0}

        # purge needs confirm=true
        dead_id, _ = await store.submit(None, metadata={"permanent": {"extract": "unreadable"}})
        await wait_for_states(store, [dead_id], {"failed", "dead"})
    extract = (await http.get("/v1/dlq/extract")).json()
    assert extract["count"] == 1 and extract["letters"][0]["error"] == "unreadable"
    assert_problem(await http.delete("/v1/dlq/extract"), 400, "confirm=true")
    assert_problem(await http.delete("/v1/dlq/extract", params={"confirm": "false"}), 400)
    assert (await http.get("/v1/dlq/extract")).json()["count"] == 1
    r = await http.delete("/v1/dlq/extract", params={"confirm": "true"})
    assert r.status_code == 200 and r.json() == {"purged": 1}
    assert (await http.get("/v1/dlq/extract")).json() == {
        "stage": "extract",
        "count": 0,
        "letters": [],
        "next_after": None,
    }

    for method, path in [
        ("GET", "/v1/dlq/nope"),
        ("GET", "/v1/dlq/nope/0/1-0"),
        ("DELETE", "/v1/dlq/nope?confirm=true"),
    ]:
        assert_problem(await http.request(method, path), 404, "extract, classify")
    assert_problem(await http.post("/v1/dlq/nope/replay", json={"all": True}), 404)
