"""The real pipeline (extract, classify, ner with the shipped model, ingest) on each
graph sink — the harness's private Redis + FalkorDB, and the local Neo4j: two reports
naming one actor by different aliases share its ATT&CK node; a user's alias file joins
in; co-occurrence counts; reprocessing changes nothing."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from docgraph.testing import run_stages
from tests.stages.conftest import sink_settings


def _reports(host: str) -> list[tuple[str, str]]:
    return [
        (
            f"The group APT28 sent phishing mails with links to hxxp://{host}[.]com/a and ran "
            "PowerShell (T1059.001) on the hosts it reached.",
            "a.txt",
        ),
        (
            f"Analysts attribute the intrusion to Fancy Bear (ATT&CK G0007). The implant beaconed to "
            f"http://{host}.com/a every hour.",
            "b.txt",
        ),
    ]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("DOCGRAPH_") and not name.startswith("DOCGRAPH_TEST_"):
            monkeypatch.delenv(name)


@pytest.mark.service
@pytest.mark.parametrize("kind", ["falkordb", "neo4j"])
async def test_two_reports_share_the_actor_and_the_indicator(kind: str, tmp_path: Path) -> None:
    aliases = tmp_path / "aliases.yaml"
    aliases.write_text("- canonical: APT28\n  label: Group\n  attack_id: G0007\n  aliases: [Blue Athena]\n")
    host = f"update-{uuid.uuid4().hex[:8]}"  # unique: the Neo4j database is shared
    url = f"Indicator:http://{host}.com/a"
    async with run_stages(sink_settings(kind, resolve={"aliases_file": aliases})) as h:
        for _ in range(2):  # the second round reprocesses both
            ids = []
            for text, name in _reports(host):
                status = await h.wait(await h.submit_text(text, name=name), timeout=180)
                assert status.state == "completed", status.to_dict()
                ids.append(status.output("ingest")["document_id"])
            groups = h.query(
                "MATCH (d:Document)<-[:PART_OF]-(:Chunk)-[m:MENTIONS]->(g:Group) WHERE d.id IN $ids "
                "RETURN g.key, g.attack_id, g.aliases, d.name, m.text ORDER BY d.name, m.text",
                ids=ids,
            )
            assert {row[:2] for row in groups} == {("attack:G0007", "G0007")}
            assert {"Fancy Bear", "Sofacy", "Blue Athena"} <= set(groups[0][2])
            assert [(row[3], row[4]) for row in groups] == [
                ("a.txt", "APT28"),
                ("b.txt", "Fancy Bear"),
                ("b.txt", "G0007"),
            ]
            urls = h.query(
                "MATCH (d:Document)<-[:PART_OF]-(:Chunk)-[:MENTIONS]->(e:Indicator) "
                "WHERE d.id IN $ids RETURN e.key, d.name ORDER BY d.name",
                ids=ids,
            )
            assert urls == [(url, "a.txt"), (url, "b.txt")]
            assert h.query(
                "MATCH (t:Technique {key: 'attack:T1059.001'}) RETURN t.name, t.tactics, t.attack_id"
            ) == [("PowerShell", ["execution"], "T1059.001")]
            assert h.query("MATCH (g:Group {attack_id: 'G0007'}) RETURN count(g)") == [(1,)]
            # both reports name the actor and the URL in one chunk; only A the technique
            pairs = h.query(
                "MATCH (a:Entity)-[r:CO_OCCURS]->(b:Entity) WHERE a.key = $url "
                "RETURN b.key, r.count, r.documents ORDER BY b.key",
                url=url,
            )
            assert [p for p in pairs if p[0].startswith("attack:")] == [
                ("attack:G0007", 2, 2),
                ("attack:T1059.001", 1, 1),
            ]
