"""`docgraph run` on the embedded default (private Redis + FalkorDB + local folder)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.stages import corpus


def _run(data_dir, docs) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "docgraph.core.cli", "run", "--json", "--data-dir", str(data_dir), str(docs)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode in (0, 1), result.stderr[-3000:]
    return json.loads(result.stdout)


@pytest.mark.skipif(not corpus.PDF_CORPUS.is_dir(), reason="../shared/corpus/pdf is absent")
def test_run_processes_a_folder_and_a_rerun_changes_nothing(tmp_path):
    docs = tmp_path / "in"
    shutil.copytree(corpus.REPO / "examples" / "docs", docs)
    for name in ("pdflatex-4-pages.pdf", "libreoffice-writer-password.pdf", "multicolumn.pdf"):
        shutil.copy(corpus.PDF_CORPUS / name, docs / name)
    first = _run(tmp_path / "data", docs)
    assert first["jobs"] == 6
    assert first["states"] == {"completed": 5, "failed": 1}
    [failure] = first["failures"]
    assert failure["name"] == "libreoffice-writer-password.pdf" and "decrypt" in failure["error"]
    graph = first["graph"]
    assert graph["Document"] == 5 and graph["Entity"] > 10 and graph["MENTIONS"] >= graph["Entity"]
    assert {d["type"] for d in first["documents"] if d["name"] == "advisory-siemens.md"} == {
        "vulnerability_advisory"
    }
    second = _run(tmp_path / "data", docs)
    assert second["graph"] == graph
