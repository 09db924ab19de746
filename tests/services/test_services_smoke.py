"""Smoke tests against the real local services started by deploy/local/services.sh.

    deploy/local/services.sh up all
    eval "$(deploy/local/services.sh env)"
    pytest tests/services -q

Each test reads the DOCGRAPH_TEST_* variables that `services.sh env` prints and
skips (with the reason) when they are absent; CI's conftest turns such skips into
failures. Every address here is whatever the variables say -- services.sh only
ever hands out 127.0.0.1.
"""

from __future__ import annotations

import io
import json
import os
import time
import urllib.error
import urllib.request
import uuid

import pytest

pytestmark = pytest.mark.service

HOW_TO = 'start them with deploy/local/services.sh up all && eval "$(deploy/local/services.sh env)"'


def need(*names: str) -> list[str]:
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        pytest.skip(f"{', '.join(missing)} not set: {HOW_TO}")
    return [os.environ[n] for n in names]


# --- Redis + FalkorDB ------------------------------------------------------------


def test_redis_ping_and_graph_query() -> None:
    (url,) = need("DOCGRAPH_TEST_REDIS_URL")
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(url, socket_timeout=10)
    graph = f"smoke:{uuid.uuid4().hex}"
    try:
        assert client.ping() is True
        client.execute_command(
            "GRAPH.QUERY", graph, "CREATE (:Smoke {name: 'a'})-[:TO]->(:Smoke {name: 'b'})"
        )
        reply = client.execute_command(
            "GRAPH.QUERY", graph, "MATCH (x:Smoke)-[:TO]->(y:Smoke) RETURN x.name, y.name"
        )
        # Reply layout: [header, rows, statistics].
        rows = [[v.decode() if isinstance(v, bytes) else v for v in row] for row in reply[1]]
        assert rows == [["a", "b"]]
    finally:
        client.delete(graph)
        client.close()


# --- Neo4j -----------------------------------------------------------------------


def test_neo4j_return_1_with_auth() -> None:
    uri, user, password = need(
        "DOCGRAPH_TEST_NEO4J_URI", "DOCGRAPH_TEST_NEO4J_USER", "DOCGRAPH_TEST_NEO4J_PASSWORD"
    )
    neo4j = pytest.importorskip("neo4j")
    with neo4j.GraphDatabase.driver(uri, auth=(user, password), connection_timeout=10) as driver:
        records, _, _ = driver.execute_query("RETURN 1 AS one")
        assert records[0]["one"] == 1
        # A write and read back, so this is a working database, not just a handshake.
        marker = uuid.uuid4().hex
        driver.execute_query("CREATE (:Smoke {marker: $m})", m=marker)
        records, _, _ = driver.execute_query(
            "MATCH (n:Smoke {marker: $m}) WITH n, n.marker AS got DELETE n RETURN got", m=marker
        )
        assert [r["got"] for r in records] == [marker]


def test_neo4j_refuses_a_wrong_password() -> None:
    uri, user, password = need(
        "DOCGRAPH_TEST_NEO4J_URI", "DOCGRAPH_TEST_NEO4J_USER", "DOCGRAPH_TEST_NEO4J_PASSWORD"
    )
    neo4j = pytest.importorskip("neo4j")
    from neo4j.exceptions import AuthError

    # One attempt only: Neo4j locks the user for a few seconds after 3 failures.
    with (
        neo4j.GraphDatabase.driver(uri, auth=(user, password + "-wrong"), connection_timeout=10) as driver,
        pytest.raises(AuthError),
    ):
        driver.verify_connectivity()


# --- S3 (versitygw, S3-compatible) -----------------------------------------------


def test_s3_put_and_get_object() -> None:
    endpoint, access, secret, bucket = need(
        "DOCGRAPH_TEST_S3_ENDPOINT",
        "DOCGRAPH_TEST_S3_ACCESS_KEY",
        "DOCGRAPH_TEST_S3_SECRET_KEY",
        "DOCGRAPH_TEST_S3_BUCKET",
    )
    minio = pytest.importorskip("minio")
    client = minio.Minio(
        endpoint,
        access_key=access,
        secret_key=secret,
        region=os.environ.get("DOCGRAPH_TEST_S3_REGION", "us-east-1"),
        secure=False,
    )
    assert client.bucket_exists(bucket)
    key = f"smoke/{uuid.uuid4().hex}.json"
    payload = json.dumps({"hello": "docgraph"}).encode()
    try:
        client.put_object(bucket, key, io.BytesIO(payload), len(payload), content_type="application/json")
        response = client.get_object(bucket, key)
        try:
            assert response.read() == payload
        finally:
            response.close()
            response.release_conn()
        assert client.stat_object(bucket, key).size == len(payload)
        assert key in [o.object_name for o in client.list_objects(bucket, prefix="smoke/", recursive=True)]
    finally:
        client.remove_object(bucket, key)


def test_s3_refuses_a_wrong_secret() -> None:
    endpoint, access, secret, bucket = need(
        "DOCGRAPH_TEST_S3_ENDPOINT",
        "DOCGRAPH_TEST_S3_ACCESS_KEY",
        "DOCGRAPH_TEST_S3_SECRET_KEY",
        "DOCGRAPH_TEST_S3_BUCKET",
    )
    minio = pytest.importorskip("minio")
    from minio.error import S3Error

    client = minio.Minio(
        endpoint,
        access_key=access,
        secret_key=secret + "-wrong",
        secure=False,
        region=os.environ.get("DOCGRAPH_TEST_S3_REGION", "us-east-1"),
    )
    with pytest.raises(S3Error):
        client.list_objects(bucket).__next__()


# --- Jaeger (OTLP in, query API out) ---------------------------------------------


def _get_json(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:  # not stored yet
            return None
        raise


def test_jaeger_otlp_http_span_round_trip() -> None:
    otlp, query = need("DOCGRAPH_TEST_OTLP_ENDPOINT", "DOCGRAPH_TEST_JAEGER_QUERY")
    pytest.importorskip("opentelemetry.sdk")
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    service = f"docgraph-smoke-{uuid.uuid4().hex[:8]}"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{otlp}/v1/traces", timeout=10))
    )
    with provider.get_tracer("docgraph.smoke").start_as_current_span("smoke-span") as span:
        span.set_attribute("docgraph.smoke", True)
        trace_id = format(span.get_span_context().trace_id, "032x")
    provider.shutdown()

    # The collector batches (200 ms in deploy/local/jaeger/config.yaml): poll briefly.
    deadline = time.monotonic() + 15
    body = None
    while time.monotonic() < deadline:
        body = _get_json(f"{query}/api/traces/{trace_id}")
        if body and body.get("data"):
            break
        time.sleep(0.2)
    assert body and body.get("data"), f"trace {trace_id} never showed up in {query}"
    (trace,) = body["data"]
    assert [s["operationName"] for s in trace["spans"]] == ["smoke-span"]
    assert {p["serviceName"] for p in trace["processes"].values()} == {service}

    # The OTLP-shaped v3 API sees the same trace.
    v3 = _get_json(f"{query}/api/v3/traces/{trace_id}")
    assert v3 is not None
    names = [
        s["name"] for rs in v3["result"]["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]
    ]
    assert names == ["smoke-span"]
