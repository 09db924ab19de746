"""docgraph.testing against real servers: a plugin's stage placed into the default
pipeline, its settings, lifecycle hooks and graph contribution — on the private
redis-server + FalkorDB the harness starts, and on the local Redis + Neo4j."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

from docgraph.core.settings import Settings
from docgraph.plugins.hookspecs import hookimpl
from docgraph.testing import run_stages
from tests.conftest import NEO4J_ENV
from tests.plugins import demo_plugin

TEXT = "Alpha beta gamma. Delta ox alpha."


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("DOCGRAPH_") and not name.startswith("DOCGRAPH_TEST_"):
            monkeypatch.delenv(name)
    demo_plugin.EVENTS.clear()


async def test_a_plugin_stage_runs_in_the_default_pipeline_on_a_private_redis() -> None:
    async with run_stages(plugins=[demo_plugin], plugin_settings={"demo": {"greeting": "hi"}}) as h:
        assert h.settings.redis_url != Settings().redis_url  # the harness's own server
        job = await h.submit_text(TEXT, name="t.txt")
        status = await h.wait(job, timeout=120)
        assert status.state == "completed", status.to_dict()
        out = status.output("shout")
        assert out["greeting"] == "hi" and out["loud"] == ["ALPHA", "BETA", "DELTA", "GAMMA"]
        assert out["events_at_run"] == ["started:hi"]  # started before the first job
        assert status.stage("ingest").output["contributed_edges"] == 5
        rows = h.query(
            "MATCH (:Document)-[r:SHOUTS]->(n:Loud) RETURN n.key, n.size, r.rank, r.stage ORDER BY r.rank"
        )
        assert rows == [
            ("ALPHA", 5, 0, "shout"),
            ("BETA", 4, 1, "shout"),
            ("DELTA", 5, 2, "shout"),
            ("GAMMA", 5, 3, "shout"),
        ]
        assert h.query("MATCH (c:Chunk)-[:FIRST_LOUD]->(n:Loud) RETURN c.index, n.key") == [(0, "ALPHA")]
        # the same document again: same nodes, same edges (MERGE on stable keys, edges replaced)
        status = await h.wait(await h.submit_text(TEXT, name="t.txt"), timeout=120)
        assert status.state == "completed"
        assert h.query("MATCH (n:Loud) RETURN count(n)") == [(4,)]
        assert h.query("MATCH ()-[r:SHOUTS]->() RETURN count(r)") == [(4,)]
        assert h.query("MATCH ()-[r:FIRST_LOUD]->() RETURN count(r)") == [(1,)]
        # a second document shares the nodes, with its own edges
        status = await h.wait(await h.submit_text("gamma rays", name="u.txt"), timeout=120)
        assert h.query("MATCH (n:Loud) RETURN count(n)") == [(5,)]
        assert h.query("MATCH (d:Document)-[:SHOUTS]->(:Loud {key: 'GAMMA'}) RETURN count(d)") == [(2,)]
        # replacing a document's edges seeks them by index, never scans every edge of the type
        from docgraph.plugins.sinks.cypher import delete_contributed_edges

        plan = str(h.services.graph.graph.explain(delete_contributed_edges("SHOUTS"), {"id": "x"}))
        assert "Edge By Index Scan" in plan, plan
    assert demo_plugin.EVENTS == ["started:hi", "stopping"]


class FailsToStart:
    @hookimpl
    def docgraph_worker_started(self) -> None:
        raise RuntimeError("the model server does not answer")


async def test_a_failing_started_hook_stops_the_worker_with_its_error() -> None:
    with pytest.raises(RuntimeError, match="the model server does not answer"):
        async with run_stages(plugins=[demo_plugin, FailsToStart()], stages=["extract"]) as h:
            await h.wait(await h.submit_text("x"), timeout=30)
    assert demo_plugin.EVENTS[-1] == "stopping"  # clean-up still ran


@pytest.mark.usefixtures("redis_server")
async def test_a_given_redis_url_is_used(redis_server: Any) -> None:
    async with run_stages(
        Settings(plugins=["tests.stageplugin"]),
        redis_url=redis_server.url,
        stages=["extract", "classify", "ner", "ingest"],
    ) as h:
        assert h.settings.redis_url == redis_server.url
        assert h.plugins.origins["ner"] == "tests.stageplugin"  # listed: replaces the built-in
        status = await h.wait(await h.submit_text("x"))
        assert status.state == "completed" and status.output("ingest")["by"] == "ingest"


@pytest.mark.service
@pytest.mark.skipif(
    any(not os.environ.get(v) for v in (*NEO4J_ENV, "DOCGRAPH_TEST_REDIS_URL")),
    reason="needs the local Redis and Neo4j (deploy/local/services.sh env)",
)
async def test_the_contribution_reaches_neo4j_in_the_ingest_transaction() -> None:
    settings = Settings(
        redis_url=os.environ["DOCGRAPH_TEST_REDIS_URL"],
        graph_sink="neo4j",
        neo4j_uri=os.environ["DOCGRAPH_TEST_NEO4J_URI"],
        neo4j_user=os.environ.get("DOCGRAPH_TEST_NEO4J_USER", "neo4j"),
        neo4j_password=os.environ["DOCGRAPH_TEST_NEO4J_PASSWORD"],
    )
    word = f"W{uuid.uuid4().hex[:8]}"  # unique: the Neo4j database is shared
    text = f"{word} appears here; {word.lower()} twice and zz."
    async with run_stages(settings, plugins=[demo_plugin]) as h:
        for _ in range(2):  # reprocessing changes nothing
            status = await h.wait(await h.submit_text(text, name="n.txt"), timeout=120)
            assert status.state == "completed", status.to_dict()
            doc = status.output("ingest")["document_id"]
            rows = h.query(
                "MATCH (d:Document {id: $doc})-[r:SHOUTS]->(n:Loud) RETURN n.key, r.document, r.stage ORDER BY n.key",
                doc=doc,
            )
            assert (word.upper(), doc, "shout") in rows
            assert len(rows) == len(status.output("shout")["loud"])
        assert ("contributed_Loud_key",) in h.query("SHOW CONSTRAINTS YIELD name RETURN name")
        # the index exists and is online; whether the planner uses it is Neo4j's cost-based
        # choice (a fresh database with a handful of edges may scan instead), so no plan check
        h.query("CALL db.awaitIndexes(60)")
        assert ("contributed_SHOUTS_document", "ONLINE") in h.query(
            "SHOW INDEXES YIELD name, state RETURN name, state"
        )
