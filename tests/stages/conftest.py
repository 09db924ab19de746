"""Fixtures for stage tests on real stores."""

from __future__ import annotations

import os

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
