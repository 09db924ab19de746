"""``GET /v1/entities?name=`` and ``GET /v1/documents/{id}/graph`` served by a real uvicorn,
reading the graph the real pipeline wrote (FalkorDB in the harness's Redis, and Neo4j)."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from docgraph.testing import run_stages
from tests.api.conftest import TOKENS, api_settings, serve
from tests.stages.conftest import sink_settings
from tests.stages.test_graph_reads import GROUP, BeaconPlugin, _clean_env, reports

__all__ = ["_clean_env"]  # autouse: no DOCGRAPH_* from the environment


@pytest.mark.service
@pytest.mark.parametrize("kind", ["falkordb", "neo4j"])
async def test_entity_and_document_graph_endpoints(kind: str, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    url_key = f"Indicator:http://beacon-{tag}.com/a"
    docs = reports(tag)
    async with run_stages(sink_settings(kind), plugins=[BeaconPlugin(url_key, {n for _, n in docs})]) as h:
        ids = []
        for text, name in docs:
            status = await h.wait(await h.submit_text(text, name=name), timeout=180)
            assert status.state == "completed", status.to_dict()
            ids.append(status.output("ingest")["document_id"])
        expected_url = h.services.graph.entity(url_key)  # type: ignore[union-attr]
        with serve(api_settings(h.settings, tmp_path)) as server:
            auth = {"Authorization": f"Bearer {TOKENS[0]}"}
            async with httpx.AsyncClient(base_url=server.url, headers=auth, timeout=60) as http:
                r = await http.get("/v1/entities", params={"name": "Fancy Bear", "limit": 1000})
                assert r.status_code == 200, r.text
                body = r.json()
                assert (body["key"], body["label"], body["attack_id"], body["matched_by"]) == (
                    GROUP,
                    "Group",
                    "G0007",
                    "resolver",
                )
                mine = {d["id"]: d["mentions"] for d in body["documents"] if d["id"] in ids}
                assert mine == {ids[0]: 1, ids[1]: 2}

                r = await http.get("/v1/entities", params={"name": f"hxxp://beacon-{tag}[.]com/a"})
                assert r.status_code == 200 and r.json() == expected_url.model_dump(mode="json")
                assert [(x["type"], x["node"]["key"], x["count"]) for x in r.json()["relations"]] == [
                    ("CO_OCCURS", GROUP, 2),
                    ("CO_OCCURS", "System:powershell", 1),
                    ("CO_OCCURS", "attack:T1059.001", 1),
                    ("BEACONS_TO", GROUP, 2),
                ]

                r = await http.get(f"/v1/documents/{ids[1]}/graph")
                assert r.status_code == 200, r.text
                graph = r.json()
                assert (graph["name"], graph["entity_count"], graph["mention_count"]) == (
                    f"b-{tag}.txt",
                    2,
                    3,
                )
                assert [(e["key"], e["mentions"]) for e in graph["entities"]] == [(GROUP, 2), (url_key, 1)]
                assert [(x["type"], x["count"], x["properties"]) for x in graph["relations"]] == [
                    ("CO_OCCURS", 1, {}),
                    ("BEACONS_TO", 1, {"confidence": 0.9}),
                ]
                by_name = await http.get(f"/v1/documents/a-{tag}.txt/graph", params={"limit": 1})
                assert by_name.status_code == 200 and by_name.json()["id"] == ids[0]
                assert len(by_name.json()["entities"]) == 1

                missing = await http.get("/v1/entities", params={"name": f"nobody-{tag}"})
                assert missing.status_code == 404
                assert missing.headers["content-type"].startswith("application/problem+json")
                assert "no entity named" in missing.json()["detail"]
                gone = await http.get(f"/v1/documents/missing-{tag}/graph")
                assert gone.status_code == 404 and "no document" in gone.json()["detail"]
                assert (await http.get("/v1/entities")).status_code == 422  # name is required
                assert (await http.get("/v1/entities", params={"name": "x", "limit": 0})).status_code == 422

                spec = (await http.get("/openapi.json")).json()
                assert "/v1/entities" in spec["paths"] and "/v1/documents/{id}/graph" in spec["paths"]
                assert {"EntityInfo", "DocumentGraph"} <= set(spec["components"]["schemas"])
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as anonymous:
                assert (await anonymous.get("/v1/entities", params={"name": "APT28"})).status_code == 401
                assert (await anonymous.get(f"/v1/documents/{ids[0]}/graph")).status_code == 401


@pytest.mark.service
def test_an_unreachable_neo4j_is_a_503_naming_the_setting(tmp_path: Path) -> None:
    settings = sink_settings("neo4j").model_copy(update={"neo4j_uri": "bolt://127.0.0.1:9"})
    with serve(api_settings(settings, tmp_path)) as server:
        r = httpx.get(
            f"{server.url}/v1/entities",
            params={"name": "APT28"},
            headers={"Authorization": f"Bearer {TOKENS[0]}"},
            timeout=60,
        )
    assert r.status_code == 503, r.text
    assert "DOCGRAPH_NEO4J_URI" in r.json()["detail"]
