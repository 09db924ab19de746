"""Data passed between plugins: extracted documents, chunks, entity mentions."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field


class Chunk(BaseModel):
    """A slice of a document's normalized text, with where it came from."""

    index: int
    text: str
    start: int = Field(description="character offset of the chunk in the document text")
    end: int
    page: int | None = Field(default=None, description="1-based page number, when known")


class ExtractedDocument(BaseModel):
    """What a format extractor returns: normalized text plus chunks."""

    text: str
    chunks: list[Chunk]
    content_type: str
    pages: int | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


class EntityPattern(BaseModel):
    """A rule contributed by an entity pack: a regex or a gazetteer term list."""

    label: str
    regex: str | None = None
    terms: list[str] = Field(default_factory=list)
    case_sensitive: bool = False


class Mention(BaseModel):
    """One entity mention, with offsets relative to the whole document text."""

    label: str
    text: str
    start: int
    end: int
    chunk: int
    source: str = Field(description="'model' or the name of the rule/gazetteer that found it")


@runtime_checkable
class GraphSink(Protocol):
    """Where ingest writes a document's graph (``docgraph_graph_sink`` returns one).

    ``write_document`` must be idempotent: it replaces the document's chunks and
    mentions and MERGEs entities on their keys, so a redelivered ingest leaves the
    same graph.  ``close`` releases connections when the worker stops."""

    def write_document(
        self,
        document: dict[str, Any],
        chunks: list[dict[str, Any]],
        entities: list[dict[str, Any]],
        mentions: list[dict[str, Any]],
    ) -> None: ...

    def counts(self) -> dict[str, int]: ...

    def close(self) -> None: ...
