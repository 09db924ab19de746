"""Fixtures for stage tests on real stores."""

from __future__ import annotations

import os
import uuid

import pytest

from docgraph.core.settings import Settings


@pytest.fixture
def store_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "plugins": [],
            "graph_sink": "neo4j",
            "neo4j_uri": os.environ["DOCGRAPH_TEST_NEO4J_URI"],
            "neo4j_user": os.environ.get("DOCGRAPH_TEST_NEO4J_USER", "neo4j"),
            "neo4j_password": os.environ["DOCGRAPH_TEST_NEO4J_PASSWORD"],
            "object_store_url": f"s3://{os.environ['DOCGRAPH_TEST_S3_BUCKET']}/t{uuid.uuid4().hex[:8]}",
            "s3_endpoint": os.environ["DOCGRAPH_TEST_S3_ENDPOINT"],
            "s3_access_key": os.environ["DOCGRAPH_TEST_S3_ACCESS_KEY"],
            "s3_secret_key": os.environ["DOCGRAPH_TEST_S3_SECRET_KEY"],
            "concurrency": 4,
            "visibility_timeout": 120,
        }
    )
