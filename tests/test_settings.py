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


def test_extract_and_ner_groups_with_the_documented_flat_names(monkeypatch, tmp_path):
    from docgraph.plugins.extractors.limits import Limits

    monkeypatch.setenv("DOCGRAPH_MAX_PAGES", "7")  # the documented name keeps working
    monkeypatch.setenv("DOCGRAPH_EXTRACT__TIMEOUT", "5")
    monkeypatch.setenv("DOCGRAPH_MAX_TEXT_CHARS", "999")
    monkeypatch.setenv("DOCGRAPH_EXTRACT__MAX_TEXT_CHARS", "1234")  # the grouped name wins
    monkeypatch.setenv("DOCGRAPH_NER_MODEL", str(tmp_path))
    s = Settings()
    assert (s.extract.max_pages, s.extract.timeout, s.extract.max_text_chars) == (7, 5.0, 1234)
    assert s.ner.model == tmp_path
    limits = Limits.from_settings(s)
    assert (limits.max_pages, limits.extract_timeout, limits.max_text_chars) == (7, 5.0, 1234)
    monkeypatch.setenv("DOCGRAPH_EXTRACT__MAX_PAGES", "0")
    with pytest.raises(ValidationError, match="max_pages"):
        Settings()


def test_unknown_variables_are_reported_with_the_closest_name():
    from docgraph.core.settings import unknown_variables

    env = {
        "DOCGRAPH_CONCURENCY": "3",
        "DOCGRAPH_RETRY__ATTEMPT": "2",
        "DOCGRAPH_EXTRACT__MAX_PAGE": "2",
        "DOCGRAPH_QQQ": "1",
        # valid: settings, free-form stage options, legacy names, tooling variables
        "DOCGRAPH_CONCURRENCY": "2",
        "DOCGRAPH_STAGES__NER__CONCURRENCY": "2",
        "DOCGRAPH_MAX_PAGES": "3",
        "DOCGRAPH_TEST_REDIS_URL": "redis://127.0.0.1:1/0",
        "DOCGRAPH_CI": "1",
        "PATH": "/bin",
    }
    messages = unknown_variables(env)
    assert messages == [
        "DOCGRAPH_CONCURENCY is not a docgraph setting and is ignored; did you mean DOCGRAPH_CONCURRENCY?",
        "DOCGRAPH_EXTRACT__MAX_PAGE is not a docgraph setting and is ignored; "
        "did you mean DOCGRAPH_EXTRACT__MAX_PAGES?",
        "DOCGRAPH_QQQ is not a docgraph setting and is ignored; `docgraph config show` lists the settings",
        "DOCGRAPH_RETRY__ATTEMPT is not a docgraph setting and is ignored; did you mean DOCGRAPH_RETRY__ATTEMPTS?",
    ]


def test_the_cli_warns_about_an_unknown_variable_at_start_up():
    import os

    env = {**os.environ, "DOCGRAPH_CONCURENCY": "3"}
    out = subprocess.run(
        [sys.executable, "-m", "docgraph.core.cli", "asyncapi"], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0
    assert "did you mean DOCGRAPH_CONCURRENCY?" in out.stderr


def test_the_cli_names_the_variable_of_a_bad_value():
    import os

    env = {**os.environ, "DOCGRAPH_PARTITIONS": "0", "DOCGRAPH_RETRY__ATTEMPTS": "zero"}
    out = subprocess.run(
        [sys.executable, "-m", "docgraph.core.cli", "asyncapi"], env=env, capture_output=True, text=True
    )
    assert out.returncode == 2
    assert "configuration error DOCGRAPH_PARTITIONS: Input should be greater than or equal to 1" in out.stderr
    assert "configuration error DOCGRAPH_RETRY__ATTEMPTS:" in out.stderr
    assert "Traceback" not in out.stderr
