"""The example plugin package, installed the way a user installs a plugin — into its
own virtual environment, never into the one the other tests use (its entry point
would add its stage to every topology) — then its own tests, `docgraph run` on the
example documents, its command and `docgraph config show`, and its nodes in the graph."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from docgraph.core.settings import Settings
from docgraph.plugins.manager import load_plugins
from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "docgraph-wordcount"


def _uv() -> str:
    found = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    if not Path(found).exists():
        pytest.fail("uv is needed to build the example's virtual environment (deploy/setup.sh installs it)")
    return found


def _env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCGRAPH_") and k != "PYTHONPATH"}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    env["COLUMNS"] = "200"
    return env


def _run(
    cmd: list[str], env: dict[str, str], cwd: Path, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{cmd}: exit {out.returncode}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("example") / "venv"
    uv = _uv()
    env = _env(path)
    _run([uv, "venv", "--quiet", "--python", sys.executable, str(path)], env, ROOT)
    _run(
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            str(path / "bin" / "python"),
            "-e",
            str(ROOT),
            "-e",
            f"{EXAMPLE}[test]",
        ],
        env,
        ROOT,
        timeout=900,
    )
    return path


def test_the_example_is_not_installed_here() -> None:
    assert "wordcount" not in load_plugins(Settings()).stages  # so this suite's topologies stay as they are


def test_the_examples_own_tests_pass_in_its_venv(venv: Path) -> None:
    out = _run(
        [str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"], _env(venv), EXAMPLE
    )
    assert "2 passed" in out.stdout


def test_docgraph_run_runs_the_installed_stage_and_its_words_reach_the_graph(
    venv: Path, tmp_path: Path
) -> None:
    env = _env(venv)
    data = tmp_path / "data"
    docs = ROOT / "examples" / "docs"
    out = _run(
        [str(venv / "bin" / "docgraph"), "run", str(docs), "--json", "--data-dir", str(data), "-p", "1"],
        {**env, "DOCGRAPH_DATA_DIR": str(data), "DOCGRAPH_WORDCOUNT__TOP": "5"},
        tmp_path,
    )
    summary = json.loads(out.stdout)
    assert summary["states"] == {"completed": len(list(docs.iterdir()))}, summary["failures"]
    assert summary["stage_seconds_mean"]["wordcount"] is not None
    assert summary["totals"]["wordcount.words"] > 0
    # the graph survives the run in the embedded data dir: open it and look
    from falkordb import FalkorDB

    from docgraph.core.runtime.embedded import EmbeddedRedis

    server = EmbeddedRedis(data)
    server.start()
    try:
        graph = FalkorDB(host="127.0.0.1", port=server.port).select_graph("docgraph")
        rows = graph.ro_query(
            "MATCH (d:Document)-[r:HAS_WORD]->(w:Word) RETURN d.name, count(w), collect(DISTINCT r.stage)"
        ).result_set
    finally:
        server.stop()
    assert sorted(r[0] for r in rows) == sorted(p.name for p in docs.iterdir())
    assert all(r[1] == 5 and r[2] == ["wordcount"] for r in rows), rows


def test_the_plugins_command_and_settings_are_in_the_cli(venv: Path, tmp_path: Path) -> None:
    env = {**_env(venv), "DOCGRAPH_WORDCOUNT__MIN_LENGTH": "6"}
    note = tmp_path / "note.txt"
    note.write_text("reports reports graphs reports")
    out = _run([str(venv / "bin" / "docgraph"), "wordcount", "count", str(note), "--json"], env, tmp_path)
    assert json.loads(out.stdout) == {"reports": 3, "graphs": 1}
    shown = json.loads(
        _run([str(venv / "bin" / "docgraph"), "config", "show", "--json"], env, tmp_path).stdout
    )
    rows = {(r["namespace"], r["name"]): r for r in shown["settings"]}
    assert rows[("wordcount", "min_length")]["value"] == 6
    assert rows[("wordcount", "min_length")]["source"] == "env DOCGRAPH_WORDCOUNT__MIN_LENGTH"
    assert {"stage": "wordcount", "plugin": "wordcount", "runs": True} in shown["stages"]
