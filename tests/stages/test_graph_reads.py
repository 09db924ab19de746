"""Graph reads (``GraphSink.stats / entity / document``) after the real pipeline (extract,
classify, ner with the shipped model, ingest) on each sink — the harness's private
Redis + FalkorDB, and the local Neo4j — and the same input through both sinks giving
the same answers.  A contribution plugin adds a typed edge, so reads show both
CO_OCCURS and contributed relations."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

from docgraph.plugins.entities.resolve import resolver_for
from docgraph.plugins.hookspecs import hookimpl
from docgraph.plugins.types import GraphContribution, GraphEdge, NodeRef
from docgraph.testing import run_stages
from tests.stages.conftest import sink_settings

GROUP = "attack:G0007"


class BeaconPlugin:
    """Contributes ``(G0007)-[:BEACONS_TO {confidence}]->(url)`` for the test's documents."""

    def __init__(self, url_key: str, names: set[str]) -> None:
        self.url_key, self.names = url_key, names

    @hookimpl
    def docgraph_graph_contribution(self, ctx: Any, document: dict[str, Any]) -> GraphContribution | None:
        if document["name"] not in self.names:
            return None
        edge = GraphEdge(
            type="BEACONS_TO",
            source=NodeRef(label="Entity", key=GROUP),
            target=NodeRef(label="Entity", key=self.url_key),
            properties={"confidence": 0.9},
        )
        return GraphContribution(stage="beacons", edges=[edge])


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("DOCGRAPH_") and not name.startswith("DOCGRAPH_TEST_"):
            monkeypatch.delenv(name)


def reports(tag: str) -> list[tuple[str, str]]:
    host = f"beacon-{tag}"
    return [
        (
            f"The group APT28 sent phishing mails with links to hxxp://{host}[.]com/a and ran "
            "PowerShell (T1059.001) on the hosts it reached.",
            f"a-{tag}.txt",
        ),
        (
            f"Analysts attribute the intrusion to Fancy Bear (ATT&CK G0007). The implant beaconed to "
            f"http://{host}.com/a every hour.",
            f"b-{tag}.txt",
        ),
    ]


async def read_all(kind: str, tag: str) -> dict[str, Any]:
    """Run the two reports through the pipeline on ``kind``; every read's result."""
    url_key = f"Indicator:http://beacon-{tag}.com/a"
    docs = reports(tag)
    plugin = BeaconPlugin(url_key, {name for _, name in docs})
    async with run_stages(sink_settings(kind), plugins=[plugin]) as h:
        ids = []
        for text, name in docs:
            status = await h.wait(await h.submit_text(text, name=name), timeout=180)
            assert status.state == "completed", status.to_dict()
            ids.append(status.output("ingest")["document_id"])
        sink: Any = h.services.graph
        resolver = resolver_for(h.settings, h.plugins.manager)
        return {
            "ids": ids,
            "url_key": url_key,
            "stats": sink.stats(),
            "fancy": sink.entity("Fancy Bear", resolver, limit=1000),
            "fancy_by_name": sink.entity("fancy BEAR", None, limit=3),
            "url": sink.entity(f"hxxp://beacon-{tag}[.]com/a", resolver),
            "url_by_key": sink.entity(url_key, resolver),
            "nobody": sink.entity(f"nobody-{tag}", resolver),
            "doc_b": sink.document(f"b-{tag}.txt"),
            "doc_a_by_id": sink.document(ids[0]),
            "doc_a_by_prefix": sink.document(ids[0][:12]),
            "doc_a_limited": sink.document(ids[0], limit=1),
            "no_doc": sink.document(f"missing-{tag}.txt"),
        }


@pytest.mark.service
@pytest.mark.parametrize("kind", ["falkordb", "neo4j"])
async def test_reads_after_the_real_pipeline(kind: str) -> None:
    tag = uuid.uuid4().hex[:8]  # unique: the Neo4j database is shared
    r = await read_all(kind, tag)
    a_id, b_id = r["ids"]
    url_key = r["url_key"]

    stats = r["stats"]
    for label in ("Document", "Chunk", "Entity", "Group", "Indicator", "Technique"):
        assert stats.nodes[label] >= 1, (label, stats)
    assert {"PART_OF", "MENTIONS", "CO_OCCURS", "BEACONS_TO"} <= set(stats.edges)
    if kind == "falkordb":  # a private graph: exact counts
        assert stats.nodes == {
            "Chunk": 2,
            "Document": 2,
            "Entity": 4,
            "Group": 1,
            "Indicator": 1,
            "System": 1,  # "PowerShell", the software (CyNER's System); T1059.001 the technique
            "Technique": 1,
        }
        assert stats.edges == {"BEACONS_TO": 2, "CO_OCCURS": 6, "MENTIONS": 7, "PART_OF": 2}

    fancy = r["fancy"]  # an alias, through the resolver ingest uses
    assert (fancy.key, fancy.label, fancy.name, fancy.attack_id) == (GROUP, "Group", "APT28", "G0007")
    assert fancy.matched_by == "resolver"
    assert {"APT28", "Fancy Bear", "Sofacy"} <= set(fancy.aliases)
    mine = {d.id: d.mentions for d in fancy.documents if d.id in (a_id, b_id)}
    assert mine == {a_id: 1, b_id: 2}  # "APT28"; "Fancy Bear" and "G0007"
    co = {x.node.key: (x.count, x.documents) for x in fancy.relations if x.type == "CO_OCCURS"}
    assert co[url_key] == (2, 2)
    beacons = [x for x in fancy.relations if x.type == "BEACONS_TO" and x.node.key == url_key]
    assert [(b.direction, b.count, b.documents) for b in beacons] == [("out", 2, 2)]
    if kind == "falkordb":
        assert (fancy.mentions, fancy.document_count) == (3, 2)
        assert [(d.name, d.mentions) for d in fancy.documents] == [(f"b-{tag}.txt", 2), (f"a-{tag}.txt", 1)]
    else:
        assert fancy.mentions >= 3 and fancy.document_count >= 2

    by_name = r["fancy_by_name"]  # no resolver: case-insensitive on names and aliases
    assert (by_name.key, by_name.matched_by) == (GROUP, "name")
    assert len(by_name.documents) <= 3

    url = r["url"]  # a defanged spelling finds the one canonical indicator
    assert (url.key, url.label, url.matched_by) == (url_key, "Indicator", "key")
    assert (url.mentions, url.document_count) == (2, 2)
    assert sorted(d.id for d in url.documents) == sorted([a_id, b_id])
    assert [(x.type, x.direction, x.node.key, x.count, x.documents) for x in url.relations] == [
        ("CO_OCCURS", "both", GROUP, 2, 2),
        ("CO_OCCURS", "both", "System:powershell", 1, 1),
        ("CO_OCCURS", "both", "attack:T1059.001", 1, 1),
        ("BEACONS_TO", "in", GROUP, 2, 2),
    ]
    assert r["url_by_key"] == url
    assert r["nobody"] is None

    doc = r["doc_b"]  # by name
    assert (doc.id, doc.name, doc.chunks, doc.same_name) == (b_id, f"b-{tag}.txt", 1, [])
    assert (doc.entity_count, doc.mention_count) == (2, 3)
    assert [(e.key, e.mentions) for e in doc.entities] == [(GROUP, 2), (url_key, 1)]
    assert doc.entities[0].attack_id == "G0007"
    rels = [(x.type, x.source.key, x.target.key, x.count, x.stage, x.properties) for x in doc.relations]
    assert rels == [
        ("CO_OCCURS", url_key, GROUP, 1, "ingest", {}),
        ("BEACONS_TO", GROUP, url_key, 1, "beacons", {"confidence": 0.9}),
    ]
    assert doc.relations[0].total == 2  # this pair over the whole graph: both reports

    by_id = r["doc_a_by_id"]
    assert by_id.name == f"a-{tag}.txt" and r["doc_a_by_prefix"] == by_id
    assert {e.key for e in by_id.entities} == {GROUP, url_key, "System:powershell", "attack:T1059.001"}
    limited = r["doc_a_limited"]
    assert len(limited.entities) == 1 and limited.entity_count == 4
    assert r["no_doc"] is None


@pytest.mark.service
async def test_both_sinks_answer_the_same() -> None:
    """One input, both sinks: equal results (graph-wide CO_OCCURS totals and stats aside,
    since the Neo4j database is shared with other tests)."""
    tag = uuid.uuid4().hex[:8]
    falkor = await read_all("falkordb", tag)
    neo = await read_all("neo4j", tag)
    assert falkor["ids"] == neo["ids"]  # content-addressed
    for name in ("url", "url_by_key", "nobody", "doc_b", "doc_a_by_id", "doc_a_limited", "no_doc"):
        left, right = falkor[name], neo[name]
        if name.startswith("doc_") and left is not None:
            left = left.model_copy(
                update={"relations": [x.model_copy(update={"total": None}) for x in left.relations]}
            )
            right = right.model_copy(
                update={"relations": [x.model_copy(update={"total": None}) for x in right.relations]}
            )
        assert left == right, name
    # shared entity: its own fields agree, and this test's documents are listed the same
    f, n = falkor["fancy"], neo["fancy"]
    assert (f.key, f.label, f.name, f.attack_id, f.aliases, f.matched_by) == (
        n.key,
        n.label,
        n.name,
        n.attack_id,
        n.aliases,
        n.matched_by,
    )
    assert [d for d in f.documents] == [d for d in n.documents if d.id in set(falkor["ids"])]
