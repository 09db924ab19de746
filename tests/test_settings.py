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
        ("http://127.0.0.1:6379", "must start with one of redis://, rediss://"),
        ("redis://a:1,b:2/0", "use redis\\+cluster://"),
        ("redis+cluster://", "names no host"),
        ("redis+cluster://a:7000/3", "only database 0"),
        ("redis+cluster://a:7000?ssl=1", "takes no \\?options"),
        ("redis+sentinel://a:26379", "names no Sentinel master"),
        ("rediss+sentinel://a:26379,b:x/m", "'b:x' has an invalid port"),
        ("redis://u:s3cret@h:1/x", "DOCGRAPH_REDIS_URL='redis://u:\\*\\*\\*@h:1/x'.*not a number"),
    ],
)
def test_bad_redis_url_is_explained(url, message):
    with pytest.raises(ValidationError, match=message):
        Settings(redis_url=url)


@pytest.mark.parametrize(
    ("url", "mode", "tls", "nodes", "master", "db"),
    [
        ("redis://127.0.0.1:6379/2", "single", False, [("127.0.0.1", 6379)], "", 2),
        ("rediss://u:p@h/0", "single", True, [("h", 6379)], "", 0),
        ("redis+cluster://a:7000,b:7001", "cluster", False, [("a", 7000), ("b", 7001)], "", 0),
        ("rediss+cluster://u:p@[::1]:7000,b", "cluster", True, [("::1", 7000), ("b", 6379)], "", 0),
        (
            "redis+sentinel://a,b:26380/mymaster/1",
            "sentinel",
            False,
            [("a", 26379), ("b", 26380)],
            "mymaster",
            1,
        ),
        ("rediss+sentinel://:pw@a:26379/m", "sentinel", True, [("a", 26379)], "m", 0),
    ],
)
def test_redis_url_modes(url, mode, tls, nodes, master, db):
    t = Settings(redis_url=url).redis_target
    assert (t.mode, t.tls, list(t.nodes), t.master, t.db) == (mode, tls, nodes, master, db)
    assert "p@" not in repr(t) and "pw" not in repr(t)  # the password is not in the repr


def test_tls_settings_need_a_tls_url_and_existing_files(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    assert Settings(redis_url="rediss://h:1/0", redis_tls={"ca_file": ca}).redis_tls.ca_file == ca
    with pytest.raises(
        ValidationError, match=r"DOCGRAPH_REDIS_TLS__\* is set but .* is plaintext: use rediss://"
    ):
        Settings(redis_url="redis://h:1/0", redis_tls={"ca_file": ca})
    with pytest.raises(
        ValidationError, match=r"DOCGRAPH_REDIS_TLS__CA_FILE='.*nope\.pem' is not a readable file"
    ):
        Settings(redis_url="rediss://h:1/0", redis_tls={"ca_file": tmp_path / "nope.pem"})
    with pytest.raises(ValidationError, match="KEY_FILE is set without DOCGRAPH_REDIS_TLS__CERT_FILE"):
        Settings(redis_url="rediss://h:1/0", redis_tls={"key_file": ca})


async def test_connect_builds_the_client_of_each_mode():
    """Construction only (no server): a cluster client from its seeds, a Sentinel-managed master."""
    from redis.asyncio.cluster import RedisCluster
    from redis.asyncio.sentinel import SentinelConnectionPool

    from docgraph.core.runtime.connection import connect

    cluster = connect(Settings(redis_url="rediss+cluster://u:pw@127.0.0.1:7000,127.0.0.1:7001"))
    assert isinstance(cluster, RedisCluster)
    assert [(n.host, n.port) for n in cluster.startup_nodes] == [
        ("127.0.0.1", 7000),
        ("127.0.0.1", 7001),
    ]
    await cluster.aclose()
    master = connect(Settings(redis_url="redis+sentinel://127.0.0.1:26379/mymaster/2"))
    assert isinstance(master.connection_pool, SentinelConnectionPool)
    assert master.connection_pool.service_name == "mymaster"
    await master.aclose()


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


def test_cli_prints_a_url_error_with_brackets_as_is():
    env = {"DOCGRAPH_REDIS_URL": "redis+sentinel://127.0.0.1:26379", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "docgraph.core.cli", "jobs"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "end it with /<master-name>[/<db>]" in " ".join(result.stderr.split())


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
