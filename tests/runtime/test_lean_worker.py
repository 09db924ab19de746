"""A worker process imports only what its stages need.

Checked on real ``docgraph worker`` processes (``python -X importtime`` lists
every module a process imported): the HTTP API, FastStream, spaCy and the
format libraries stay out of workers whose stages do not use them.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from docgraph.core.runtime.keys import Keys
from docgraph.core.settings import Settings
from tests.conftest import worker_env

NEVER_IN_A_WORKER = {"fastapi", "starlette", "uvicorn", "faststream"}
FORMAT_LIBS = {"pypdf", "docx", "lxml", "charset_normalizer", "PIL", "pytesseract", "pypdfium2"}
NER_LIBS = {"spacy", "thinc"}


def _imported_by_worker(settings: Settings, client_sync, *args: str, **env: str) -> set[str]:
    """Top-level packages a started, then stopped, worker process imported."""
    cmd = [sys.executable, "-X", "importtime", "-m", "docgraph.core.cli", "worker", *args]
    proc = subprocess.Popen(
        cmd, env=worker_env(settings, **env), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
    )
    pattern = Keys(settings.key_prefix, settings.partitions).lease("*")
    try:
        deadline = time.monotonic() + 60
        while not list(client_sync.scan_iter(match=pattern, count=1000)):  # its lease: it is up
            assert proc.poll() is None, "the worker exited"
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    names = set()
    for line in err.decode(errors="replace").splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    assert "redis" in names  # the listing is what it claims to be
    return names


@pytest.fixture
def client_sync(settings):
    import redis

    c = redis.Redis.from_url(settings.redis_url)
    yield c
    c.close()


def test_a_no_op_worker_imports_no_api_no_spacy_no_format_library(settings, client_sync):
    topology = '{"a": [], "b": ["a"]}'
    names = _imported_by_worker(settings, client_sync, DOCGRAPH_TOPOLOGY=topology)
    assert not names & (NEVER_IN_A_WORKER | FORMAT_LIBS | NER_LIBS), names & (
        NEVER_IN_A_WORKER | FORMAT_LIBS | NER_LIBS
    )


@pytest.mark.parametrize("stage", ["extract", "classify", "ner", "ingest"])
def test_a_built_in_stage_worker_starts_without_what_it_does_not_use(settings, client_sync, stage):
    env = {"DOCGRAPH_PLUGINS": "[]"}  # the built-in stages only
    names = _imported_by_worker(settings, client_sync, "--stage", stage, **env)
    assert not names & NEVER_IN_A_WORKER, names & NEVER_IN_A_WORKER
    if stage != "ner":
        assert not names & NER_LIBS
    # formats load on their first document, even in an extract worker
    assert not names & FORMAT_LIBS, names & FORMAT_LIBS
