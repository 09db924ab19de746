"""The CLI with plugins: DOCGRAPH_PLUGINS commands, `docgraph config show`, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

DEMO = '["tests.plugins.demo_plugin"]'


def docgraph(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DOCGRAPH_")}
    return subprocess.run(
        [sys.executable, "-m", "docgraph.core.cli", *args],
        env={**clean, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_listed_plugin_adds_commands(tmp_path: Path) -> None:
    out = docgraph("demo", "hello", cwd=tmp_path, DOCGRAPH_PLUGINS=DEMO, DOCGRAPH_DEMO__GREETING="bonjour")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "bonjour"
    assert "demo" in docgraph("--help", cwd=tmp_path, DOCGRAPH_PLUGINS=DEMO).stdout
    assert "demo" not in docgraph("--help", cwd=tmp_path).stdout


def test_a_broken_plugin_list_keeps_help_and_fails_commands_in_one_line(tmp_path: Path) -> None:
    env = {"DOCGRAPH_PLUGINS": '["no_such_module_xyz"]'}
    assert docgraph("--help", cwd=tmp_path, **env).returncode == 0
    out = docgraph("config", "show", cwd=tmp_path, **env)
    assert out.returncode == 2
    assert "DOCGRAPH_PLUGINS names 'no_such_module_xyz', which cannot be imported" in out.stderr
    assert "Traceback" not in out.stderr
    out = docgraph(
        "config", "show", cwd=tmp_path, DOCGRAPH_PLUGINS='["tests.stageplugin", "tests.plugins.dup_plugin"]'
    )
    assert out.returncode == 2 and "stage 'ner' is declared by more than one plugin" in out.stderr


def test_config_show_masks_secrets_and_says_where_values_come_from(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DOCGRAPH_CONCURRENCY=3\n")
    secrets = {
        "DOCGRAPH_DEMO__API_TOKEN": "tok-0123456789",
        "DOCGRAPH_DEMO__SIGNING": "sig-0123456789",
        "DOCGRAPH_NEO4J_PASSWORD": "pw-0123456789",
        "DOCGRAPH_S3_SECRET_KEY": "sk-0123456789",
        "DOCGRAPH_API_TOKENS": "api-0123456789",
    }
    out = docgraph(
        "config",
        "show",
        "--json",
        cwd=tmp_path,
        DOCGRAPH_PLUGINS=DEMO,
        DOCGRAPH_DEMO__THRESHOLD="5",
        DOCGRAPH_DEMO__GRETING="typo",
        DOCGRAPH_MAX_PAGES="9",
        DOCGRAPH_REDIS_URL="redis://:url-0123456789@127.0.0.1:6379/0",
        DOCGRAPH_STAGES__shout__CONCURRENCY="7",
        **secrets,
    )
    assert out.returncode == 0, out.stderr
    for value in (*secrets.values(), "url-0123456789"):
        assert value not in out.stdout
    data = json.loads(out.stdout)
    rows = {(r["namespace"], r["name"]): r for r in data["settings"]}
    assert rows[("demo", "api_token")]["value"] == "********"
    assert rows[("demo", "signing")]["value"] == "********"  # repr=False
    assert rows[("core", "neo4j_password")]["source"] == "env DOCGRAPH_NEO4J_PASSWORD"
    assert rows[("core", "redis_url")]["value"] == "redis://:********@127.0.0.1:6379/0"
    assert rows[("demo", "threshold")] == {
        "namespace": "demo",
        "name": "threshold",
        "variable": "DOCGRAPH_DEMO__THRESHOLD",
        "value": 5,
        "source": "env DOCGRAPH_DEMO__THRESHOLD",
    }
    assert rows[("demo", "greeting")]["source"] == "default"
    assert (rows[("core", "concurrency")]["value"], rows[("core", "concurrency")]["source"]) == (3, ".env")
    assert rows[("core", "extract.max_pages")]["source"] == "legacy name DOCGRAPH_MAX_PAGES"
    assert rows[("core", "retry.attempts")]["source"] == "default"
    assert rows[("core", "topology")]["source"] == "default + plugin stages (shout)"
    assert rows[("core", "topology")]["value"]["ingest"] == ["classify", "ner", "shout"]
    assert rows[("core", "stages")]["value"]["shout"]["concurrency"] == 7  # env over the spec's 3
    assert {"stage": "shout", "plugin": "tests.plugins.demo_plugin", "runs": True} in data["stages"]
    # plugin variables are known; a typo in one is reported with the closest name
    assert "DOCGRAPH_DEMO__THRESHOLD is not" not in out.stderr
    assert "DOCGRAPH_DEMO__GRETING is not a docgraph setting" in out.stderr
    assert "did you mean DOCGRAPH_DEMO__GREETING" in " ".join(out.stderr.split())
    table = docgraph("config", "show", cwd=tmp_path, DOCGRAPH_PLUGINS=DEMO, **secrets)
    assert table.returncode == 0 and "demo.api_token" in table.stdout
    for value in secrets.values():
        assert value not in table.stdout
