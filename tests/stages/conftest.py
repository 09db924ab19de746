"""Fixtures for stage tests on real stores."""

from __future__ import annotations

import os
from typing import Any

import pytest

from docgraph.core.settings import Settings
from tests.conftest import s3_store


@pytest.fixture
def store_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "plugins": [],
            "graph_sink": "neo4j",
            "neo4j_uri": os.environ["DOCGRAPH_TEST_NEO4J_URI"],
            "neo4j_user": os.environ.get("DOCGRAPH_TEST_NEO4J_USER", "neo4j"),
            "neo4j_password": os.environ["DOCGRAPH_TEST_NEO4J_PASSWORD"],
            **s3_store("t"),
            "concurrency": 4,
            "visibility_timeout": 120,
        }
    )


def sink_settings(kind: str, **extra: Any) -> Settings:
    """FalkorDB: the harness's own Redis; Neo4j: the local services (fail, never skip)."""
    if kind == "falkordb":
        return Settings(**extra)
    for name in ("DOCGRAPH_TEST_REDIS_URL", "DOCGRAPH_TEST_NEO4J_URI", "DOCGRAPH_TEST_NEO4J_PASSWORD"):
        if not os.environ.get(name):
            pytest.fail(f'{name} is not set: eval "$(./deploy/local/services.sh env)"')
    return Settings(
        redis_url=os.environ["DOCGRAPH_TEST_REDIS_URL"],
        graph_sink="neo4j",
        neo4j_uri=os.environ["DOCGRAPH_TEST_NEO4J_URI"],
        neo4j_user=os.environ.get("DOCGRAPH_TEST_NEO4J_USER", "neo4j"),
        neo4j_password=os.environ["DOCGRAPH_TEST_NEO4J_PASSWORD"],
        **extra,
    )
