"""The worker role with ``DOCGRAPH_GRAPH_SINK=falkordb``: with only the grants
``docgraph acl`` prints, the FalkorDB sink writes, rewrites and deletes a document
(taking the graph's write lock), on the embedded redis-server with the graph
module, and Redis logs no denied command for it."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import redis

from docgraph.core.cli.acl import Role, setuser_line
from docgraph.core.runtime.embedded import EmbeddedRedis
from docgraph.core.settings import Settings
from docgraph.plugins.sinks.falkordb import FalkorDBSink
from tests.redis_server import free_port

pytestmark = pytest.mark.service


def _document(doc_id: str, names: list[str]) -> dict[str, object]:
    entities = [{"key": f"Organization:{n}", "name": n, "label": "Organization", "props": {}} for n in names]
    mentions = [
        {"chunk": f"{doc_id}:0", "key": f"Organization:{n}", "start": i, "end": i + 1, "source": "test"}
        | {"text": n, "label": "Organization"}
        for i, n in enumerate(names)
    ]
    chunk = {"id": f"{doc_id}:0", "index": 0, "page": None, "text": " ".join(names)}
    doc = {"id": doc_id, "sha256": doc_id, "name": doc_id, "type": "other", "confidence": 0.5}
    return {"document": doc, "chunks": [chunk], "entities": entities, "mentions": mentions}


def test_worker_grants_cover_the_falkordb_sink(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis", port=free_port(), graph=True)
    admin_url = server.start()
    try:
        graph = f"g{uuid.uuid4().hex[:8]}"
        settings = Settings(redis_url=admin_url, graph_sink="falkordb", graph_name=graph, partitions=2)
        admin = redis.Redis.from_url(admin_url)
        admin.execute_command(*setuser_line("docgraph-worker", Role.worker, settings, "pw"))
        admin.acl_log_reset()
        as_worker = f"redis://docgraph-worker:pw@127.0.0.1:{server.port}/0"

        sink = FalkorDBSink(as_worker, graph)
        try:
            sink.write_document(**_document("d1", ["X", "Y"]))
            sink.write_document(**_document("d1", ["X", "Z"]))  # reprocessed
            sink.write_document(**_document("d2", ["Y"]))
            sink.delete_document("d2")
            assert sink.counts()["Document"] == 1
        finally:
            sink.close()
        denied = [e for e in admin.acl_log(count=100) if e["username"] == "docgraph-worker"]
        # CLIENT SETINFO on connect is refused and ignored (docgraph acl says so)
        assert [e for e in denied if e["object"] != "client|setinfo"] == []

        other = FalkorDBSink(as_worker, f"{graph}-other")  # not the configured graph
        try:
            with pytest.raises(redis.exceptions.NoPermissionError):
                other.write_document(**_document("d3", ["X"]))
        finally:
            other.close()
        admin.close()
    finally:
        server.stop()


@pytest.mark.parametrize("role", [Role.api, Role.monitor])
def test_api_and_monitor_grants_read_the_falkordb_graph_and_write_nothing(tmp_path: Path, role: Role) -> None:
    server = EmbeddedRedis(tmp_path / "redis", port=free_port(), graph=True)
    admin_url = server.start()
    try:
        graph = f"g{uuid.uuid4().hex[:8]}"
        settings = Settings(redis_url=admin_url, graph_sink="falkordb", graph_name=graph)
        writer = FalkorDBSink(admin_url, graph)
        writer.write_document(**_document("d1", ["X", "Y"]))
        writer.close()
        admin = redis.Redis.from_url(admin_url)
        admin.execute_command(*setuser_line("reader", role, settings, "pw"))
        admin.acl_log_reset()
        reader = FalkorDBSink(f"redis://reader:pw@127.0.0.1:{server.port}/0", graph)
        try:
            assert reader.stats().nodes["Document"] == 1
            found = reader.entity("X")
            assert found is not None and found.name == "X" and found.mentions == 1
            assert reader.document("d1") is not None
            with pytest.raises(redis.exceptions.NoPermissionError):
                reader.write_document(**_document("d2", ["Z"]))
        finally:
            reader.close()
        denied = [e for e in admin.acl_log(count=100) if e["username"] == "reader"]
        assert {e["object"] for e in denied} <= {"client|setinfo", "graph.query", "get", "set"}, denied
        assert [e for e in denied if e["object"] not in ("client|setinfo",)] != []  # the write was refused
        admin.close()
    finally:
        server.stop()
