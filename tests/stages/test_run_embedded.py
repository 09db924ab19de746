"""`docgraph run` on the embedded default (private Redis + FalkorDB + local folder):
the 200-document set, every job completed or failed with the expected reason,
and a second run over the same files leaves the graph exactly as it was."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.stages import corpus


def _run(data_dir, docs) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "docgraph.core.cli", "run", "--json", "--data-dir", str(data_dir), str(docs)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode in (0, 1), result.stderr[-3000:]
    return json.loads(result.stdout)


@pytest.mark.slow
@pytest.mark.skipif(not corpus.PDF_CORPUS.is_dir(), reason="../shared/corpus/pdf is absent")
def test_run_processes_200_documents_and_a_rerun_changes_nothing(tmp_path):
    folder = tmp_path / "in"
    docs = corpus.build(folder / "generated", total=200)
    for d in docs:  # the shared PDFs join the generated files in one input folder
        if d.path.parent != folder / "generated":
            (folder / d.path.name).write_bytes(d.path.read_bytes())
    expected = {d.path.name: d.expect for d in docs}
    first = _run(tmp_path / "data", folder)
    assert first["jobs"] == 200
    by_name = {d["name"]: d for d in first["documents"]}
    errors = {f["name"]: f["error"] for f in first["failures"]}
    for name, want in expected.items():
        if want == "completed":
            assert by_name[name]["state"] == "completed", (name, errors.get(name))
        else:
            assert by_name[name]["state"] == "failed" and want.lower() in errors[name].lower(), name
    completed = [d for d in first["documents"] if d["state"] == "completed"]
    graph = first["graph"]
    assert graph["Chunk"] == sum(d["chunks"] for d in completed)
    assert graph["Document"] <= len(completed)  # identical bytes are one document
    assert graph["Entity"] > 100 and graph["MENTIONS"] >= graph["Entity"]
    second = _run(tmp_path / "data", folder)
    assert second["graph"] == graph
    assert second["states"] == first["states"]
