"""The real pipeline (extract, classify, ner with the shipped model, ingest) on the
harness's private Redis + FalkorDB: two reports naming one actor by different
aliases share its ATT&CK node; a user's alias file joins in; reprocessing changes nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from docgraph.core.settings import Settings
from docgraph.testing import run_stages

REPORT_A = (
    "The group APT28 sent phishing mails with links to hxxp://update-check[.]com/a and ran "
    "PowerShell (T1059.001) on the hosts it reached."
)
REPORT_B = (
    "Analysts attribute the intrusion to Fancy Bear (ATT&CK G0007). The implant beaconed to "
    "http://update-check.com/a every hour."
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("DOCGRAPH_") and not name.startswith("DOCGRAPH_TEST_"):
            monkeypatch.delenv(name)


async def test_two_reports_share_the_actor_and_the_indicator(tmp_path: Path) -> None:
    aliases = tmp_path / "aliases.yaml"
    aliases.write_text("- canonical: APT28\n  label: Group\n  attack_id: G0007\n  aliases: [Blue Athena]\n")
    async with run_stages(Settings(resolve={"aliases_file": aliases})) as h:
        for _ in range(2):  # the second round reprocesses both
            for text, name in ((REPORT_A, "a.txt"), (REPORT_B, "b.txt")):
                status = await h.wait(await h.submit_text(text, name=name), timeout=180)
                assert status.state == "completed", status.to_dict()
            groups = h.query(
                "MATCH (d:Document)<-[:PART_OF]-(:Chunk)-[m:MENTIONS]->(g:Group) "
                "RETURN g.key, g.attack_id, g.aliases, d.name, m.text ORDER BY d.name, m.text"
            )
            assert {row[:2] for row in groups} == {("attack:G0007", "G0007")}
            assert {"Fancy Bear", "Sofacy", "Blue Athena"} <= set(groups[0][2])
            assert [(row[3], row[4]) for row in groups] == [
                ("a.txt", "APT28"),
                ("b.txt", "Fancy Bear"),
                ("b.txt", "G0007"),
            ]
            urls = h.query(
                "MATCH (d:Document)<-[:PART_OF]-(:Chunk)-[:MENTIONS]->(e:Indicator) RETURN e.key, d.name ORDER BY d.name"
            )
            assert urls == [
                ("Indicator:http://update-check.com/a", "a.txt"),
                ("Indicator:http://update-check.com/a", "b.txt"),
            ]
            assert h.query("MATCH (t:Technique) RETURN t.key, t.name, t.tactics") == [
                ("attack:T1059.001", "PowerShell", ["execution"])
            ]
            assert h.query("MATCH (g:Group) RETURN count(g)") == [(1,)]
            assert h.query("MATCH ()-[m:MENTIONS]->(:Group) RETURN count(m)") == [(3,)]
