"""``/v1/stages``: pause and resume over HTTP."""

from __future__ import annotations

import httpx


async def test_stages_pause_and_resume_over_http(http):
    listed = (await http.get("/v1/stages")).json()
    assert [s["paused"] for s in listed] == [False] * 4
    r = await http.post("/v1/stages/ner/pause")
    assert r.status_code == 200 and r.json() == {"stage": "ner", "paused": True, "changed": True}
    assert (await http.post("/v1/stages/ner/pause")).json()["changed"] is False
    ner = next(s for s in (await http.get("/v1/stages")).json() if s["stage"] == "ner")
    assert ner["paused"] and ner["paused_since"] > 0
    assert 'docgraph_stage_paused{stage="ner"} 1.0' in (await http.get("/metrics")).text
    assert (await http.post("/v1/stages/ner/resume")).json()["changed"] is True
    assert (await http.post("/v1/stages/nope/pause")).status_code == 404
    async with httpx.AsyncClient(base_url=str(http.base_url)) as anonymous:
        assert (await anonymous.post("/v1/stages/ner/pause")).status_code == 401
