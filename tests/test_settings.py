"""Configuration errors name the variable and what is wrong with it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from docgraph.core.settings import Settings
from docgraph.core.topology import Topology


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("localhost:6379", "DOCGRAPH_REDIS_URL='localhost:6379' is not a Redis URL"),
        ("redis://:6379/0", "names no host"),
        ("redis://127.0.0.1:99999/0", "invalid port"),
    ],
)
def test_bad_redis_url_is_explained(url, message):
    with pytest.raises(ValidationError, match=message):
        Settings(redis_url=url)


def test_env_prefix_and_nested_values(monkeypatch):
    monkeypatch.setenv("DOCGRAPH_REDIS_URL", "redis://10.0.0.1:6380/2")
    monkeypatch.setenv("DOCGRAPH_RETRY__ATTEMPTS", "7")
    monkeypatch.setenv("DOCGRAPH_TOPOLOGY", '{"a": [], "b": ["a"]}')
    s = Settings()
    assert s.redis_url == "redis://10.0.0.1:6380/2"
    assert s.retry.attempts == 7
    assert s.topology == {"a": [], "b": ["a"]}


def test_topology_errors():
    with pytest.raises(ValueError, match="waits for \\['x'\\], which are not stages"):
        Topology({"a": ["x"]})
    with pytest.raises(ValueError, match="cycle"):
        Topology({"a": ["b"], "b": ["a"]})
    t = Topology({"extract": [], "classify": ["extract"], "ner": ["extract"], "ingest": ["classify", "ner"]})
    assert t.roots == ("extract",)
    assert t.candidates_after("extract") == ("classify", "ner")
    assert t.skip_closure(["ner"]) == ("ner",)
    assert Topology({"a": [], "b": ["a"], "c": ["b"]}).skip_closure(["b"]) == ("b", "c")


def test_cli_reports_bad_config_with_exit_2(monkeypatch):
    env = {"DOCGRAPH_REDIS_URL": "nope", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "docgraph.core.cli", "jobs"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "DOCGRAPH_REDIS_URL='nope' is not a Redis URL" in " ".join(result.stderr.split())
