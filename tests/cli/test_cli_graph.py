"""``docgraph graph stats | entity | document`` as real processes: on the embedded default
(``docgraph run`` first, then the commands open its data dir, FalkorDB inside its
redis-server) and on Neo4j; not found is exit 1 with a hint, an unreachable graph
names the setting (exit 3)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.cli.test_newcomer import embedded_env, no_server_left
from tests.conftest import ROOT
from tests.stages.test_graph_reads import read_all

CLI = [sys.executable, "-m", "docgraph.core.cli"]


def cli(*args: str, env: dict[str, str], cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.service
def test_graph_commands_on_the_embedded_default(tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    (tmp_path / "a.txt").write_text(
        f"The group APT28 sent phishing mails with links to hxxp://c2-{tag}[.]com/a and ran "
        "PowerShell (T1059.001) on the hosts it reached."
    )
    (tmp_path / "b.txt").write_text(
        f"Analysts attribute the intrusion to Fancy Bear (ATT&CK G0007). The implant beaconed to "
        f"http://c2-{tag}.com/a every hour."
    )
    data = tmp_path / ".docgraph"
    env = embedded_env(data)
    run = cli("run", "a.txt", "b.txt", env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr

    stats = cli("graph", "stats", "--json", env=env, cwd=tmp_path)
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout) == {
        "nodes": {
            "Chunk": 2,
            "Document": 2,
            "Entity": 4,
            "Group": 1,
            "Indicator": 1,
            "System": 1,  # "PowerShell", the software; T1059.001, the technique
            "Technique": 1,
        },
        "edges": {"CO_OCCURS": 6, "MENTIONS": 7, "PART_OF": 2},
    }
    assert "using the embedded Redis" in stats.stderr
    no_server_left(data)

    entity = cli("graph", "entity", "Fancy Bear", "--json", env=env, cwd=tmp_path)
    assert entity.returncode == 0, entity.stderr
    found = json.loads(entity.stdout)
    assert (found["key"], found["label"], found["attack_id"], found["mentions"]) == (
        "attack:G0007",
        "Group",
        "G0007",
        3,
    )
    assert [(d["name"], d["mentions"]) for d in found["documents"]] == [("b.txt", 2), ("a.txt", 1)]
    assert [(r["node"]["key"], r["count"]) for r in found["relations"]] == [
        (f"Indicator:http://c2-{tag}.com/a", 2),
        ("System:powershell", 1),
        ("attack:T1059.001", 1),
    ]

    table = cli("graph", "entity", "sofacy", env=env, cwd=tmp_path)  # an alias, any case
    assert table.returncode == 0, table.stderr
    assert "APT28  Group  attack:G0007  ATT&CK G0007" in table.stdout
    assert "3 mention(s) in 2 document(s)" in table.stdout

    doc = cli("graph", "document", "a.txt", env=env, cwd=tmp_path)
    assert doc.returncode == 0, doc.stderr
    assert "1 chunk(s), 4 entities, 4 mention(s)" in doc.stdout
    for text in ("attack:G0007", "attack:T1059.001", f"Indicator:http://c2-{tag}.com/a", "CO_OCCURS"):
        assert text in doc.stdout, (text, doc.stdout)
    doc_id = json.loads(cli("graph", "document", "a.txt", "--json", env=env, cwd=tmp_path).stdout)["id"]
    by_prefix = json.loads(cli("graph", "document", doc_id[:10], "--json", env=env, cwd=tmp_path).stdout)
    assert by_prefix["name"] == "a.txt" and len(by_prefix["entities"]) == 4

    missing = cli("graph", "entity", f"nobody-{tag}", env=env, cwd=tmp_path)
    assert (
        missing.returncode == 1 and "no entity named" in missing.stderr and "try an alias" in missing.stderr
    )
    missing_doc = cli("graph", "document", "nothing.pdf", env=env, cwd=tmp_path)
    assert missing_doc.returncode == 1 and "no document 'nothing.pdf'" in missing_doc.stderr
    bad = cli("graph", "entity", "APT28", "--limit", "0", env=env, cwd=tmp_path)
    assert bad.returncode == 2
    no_server_left(data)


@pytest.mark.service
async def test_graph_commands_on_neo4j(tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    written = await read_all("neo4j", tag)  # the real pipeline writes to Neo4j
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("DOCGRAPH_") or k.startswith("DOCGRAPH_TEST_")
    }
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "COLUMNS": "200",
            "DOCGRAPH_DATA_DIR": str(tmp_path / "none"),
            "DOCGRAPH_GRAPH_SINK": "neo4j",
            "DOCGRAPH_NEO4J_URI": os.environ["DOCGRAPH_TEST_NEO4J_URI"],
            "DOCGRAPH_NEO4J_USER": os.environ.get("DOCGRAPH_TEST_NEO4J_USER", "neo4j"),
            "DOCGRAPH_NEO4J_PASSWORD": os.environ["DOCGRAPH_TEST_NEO4J_PASSWORD"],
        }
    )
    url = cli("graph", "entity", f"hxxp://beacon-{tag}[.]com/a", "--json", env=env, cwd=tmp_path)
    assert url.returncode == 0, url.stderr
    assert json.loads(url.stdout) == json.loads(written["url"].model_dump_json())
    doc = cli("graph", "document", f"b-{tag}.txt", "--json", env=env, cwd=tmp_path)
    assert json.loads(doc.stdout) == json.loads(written["doc_b"].model_dump_json())
    stats = json.loads(cli("graph", "stats", "--json", env=env, cwd=tmp_path).stdout)
    assert stats["nodes"]["Document"] >= 2 and stats["edges"]["BEACONS_TO"] >= 2

    down = cli("graph", "stats", env={**env, "DOCGRAPH_NEO4J_URI": "bolt://127.0.0.1:9"}, cwd=tmp_path)
    assert down.returncode == 3, down.stderr
    assert "cannot reach Neo4j at bolt://127.0.0.1:9" in down.stderr and "DOCGRAPH_NEO4J_URI" in down.stderr
    wrong = cli("graph", "stats", env={**env, "DOCGRAPH_NEO4J_PASSWORD": "wrong"}, cwd=tmp_path)
    assert wrong.returncode == 3 and "DOCGRAPH_NEO4J_PASSWORD" in wrong.stderr, wrong.stderr


def test_graph_help_has_examples(tmp_path: Path) -> None:
    env = embedded_env(tmp_path / ".docgraph")
    for cmd in ("stats", "entity", "document"):
        out = cli("graph", cmd, "--help", env=env, cwd=tmp_path)
        assert out.returncode == 0 and "Example" in out.stdout, (cmd, out.stderr)


def test_falkordb_without_a_redis_names_the_setting(tmp_path: Path) -> None:
    env = embedded_env(tmp_path / ".docgraph", DOCGRAPH_REDIS_URL="redis://127.0.0.1:9/0")
    out = cli("graph", "stats", env=env, cwd=tmp_path)
    assert out.returncode == 3 and "DOCGRAPH_REDIS_URL" in out.stderr, out.stderr
