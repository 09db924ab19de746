"""API settings from the environment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from docgraph.core.settings import Settings


@pytest.mark.parametrize(
    ("value", "tokens"),
    [('["t1","t2"]', ["t1", "t2"]), ("t1, t2", ["t1", "t2"]), ("solo", ["solo"]), ("", [])],
)
def test_api_tokens_from_env(monkeypatch, value, tokens):
    monkeypatch.setenv("DOCGRAPH_API_TOKENS", value)
    s = Settings()
    assert s.api_tokens == tokens
    assert all(t not in repr(s) for t in tokens)  # secrets stay out of logs


def test_bad_token_list_names_the_variable(monkeypatch):
    monkeypatch.setenv("DOCGRAPH_API_TOKENS", '["t1",')
    with pytest.raises(ValidationError, match="DOCGRAPH_API_TOKENS is not a JSON list"):
        Settings()


def test_upload_limit_defaults_to_the_document_limit_plus_form_overhead(monkeypatch):
    monkeypatch.setenv("DOCGRAPH_MAX_DOCUMENT_BYTES", "1000000")
    assert Settings().api_upload_limit == 1000000 + 1024 * 1024
    monkeypatch.setenv("DOCGRAPH_API_MAX_UPLOAD_BYTES", "5000")
    assert Settings().api_upload_limit == 5000
