"""Data passed between plugins: extracted documents, chunks, entity mentions."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field, field_validator

IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
# labels ingest owns: a contribution refers to them (NodeRef.document/chunk), never creates them
RESERVED_LABELS = frozenset({"Document", "Chunk"})
Scalar = str | int | float | bool | None


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


class AliasEntry(BaseModel):
    """One name of a canonical entity, contributed by an alias pack or a user's alias file.

    Every mention whose text is ``alias`` (case-folded unless ``case_sensitive``)
    resolves to one node: ``label`` with key ``id`` (``attack:G0007``), its
    ``canonical`` name, every alias of the same ``id`` in ``aliases``, and
    ``properties``.  ``mention_labels`` are the NER labels the alias fits
    (``Organization`` for a group); with ``require_label`` a mention with
    another label does not resolve (weak, ambiguous names such as ``Ping``)."""

    alias: str = Field(min_length=1)
    canonical: str = Field(min_length=1, description="the entity's primary name, e.g. APT28")
    label: str = Field(description="graph label of the canonical node, e.g. Group")
    id: str = Field("", description="stable identity; default <label>:<canonical, case-folded>")
    attack_id: str | None = Field(None, description="ATT&CK ID, e.g. G0007, S0002, T1059.001")
    mention_labels: tuple[str, ...] = Field((), description="NER labels this alias fits; () = any name")
    case_sensitive: bool = False
    require_label: bool = Field(False, description="resolve only mentions labelled one of mention_labels")
    properties: dict[str, Scalar | list[str]] = Field(default_factory=dict)

    @field_validator("label")
    @classmethod
    def _label(cls, value: str) -> str:
        return _identifier(value, "entity label")


class Mention(BaseModel):
    """One entity mention, with offsets relative to the whole document text."""

    label: str
    text: str
    start: int
    end: int
    chunk: int
    source: str = Field(description="'model' or the name of the rule/gazetteer that found it")


def _identifier(value: str, what: str) -> str:
    if not IDENTIFIER.match(value):
        raise ValueError(f"{what} {value!r} is not a graph identifier (a letter, then letters, digits, _)")
    return value


class NodeRef(BaseModel):
    """One end of a contributed edge: a node by label and key.

    ``NodeRef.document()`` is the document being ingested and
    ``NodeRef.chunk(i)`` its chunk ``i``; any other label names a contributed
    node (MERGEd on ``key``)."""

    label: str
    key: str = ""

    @field_validator("label")
    @classmethod
    def _label(cls, value: str) -> str:
        return _identifier(value, "node label")

    @classmethod
    def document(cls) -> NodeRef:
        return cls(label="Document")

    @classmethod
    def chunk(cls, index: int) -> NodeRef:
        return cls(label="Chunk", key=str(index))


class GraphNode(BaseModel):
    """A node a plugin contributes: MERGEd on ``(label, key)``, ``properties`` SET."""

    label: str
    key: str = Field(min_length=1, description="stable identity, e.g. 'word:graph'")
    properties: dict[str, Scalar] = Field(default_factory=dict)

    @field_validator("label")
    @classmethod
    def _label(cls, value: str) -> str:
        _identifier(value, "node label")
        if value in RESERVED_LABELS:
            raise ValueError(
                f"{value} nodes are written by ingest; refer to them with NodeRef.{value.lower()}()"
            )
        return value

    @field_validator("properties")
    @classmethod
    def _keys(cls, value: dict[str, Scalar]) -> dict[str, Scalar]:
        for name in value:
            _identifier(name, "property")
        return value

    def ref(self) -> NodeRef:
        return NodeRef(label=self.label, key=self.key)


class GraphEdge(BaseModel):
    """An edge a plugin contributes, from ``source`` to ``target``.

    MERGEd per (source, type, target, document); ingest adds the provenance
    properties ``document`` and ``stage``, which ``properties`` may not use."""

    type: str
    source: NodeRef
    target: NodeRef
    properties: dict[str, Scalar] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        return _identifier(value, "edge type")

    @field_validator("properties")
    @classmethod
    def _keys(cls, value: dict[str, Scalar]) -> dict[str, Scalar]:
        for name in value:
            _identifier(name, "property")
            if name in ("document", "stage"):
                raise ValueError(f"edge property {name!r} is provenance, set by ingest")
        return value


class GraphContribution(BaseModel):
    """What ``docgraph_graph_contribution`` returns: one stage's nodes and edges for one document."""

    stage: str = Field(description="the stage whose results these are (edge provenance)")
    nodes: list[GraphNode] = Field(default_factory=list)
    edges: list[GraphEdge] = Field(default_factory=list)


@runtime_checkable
class GraphSink(Protocol):
    """Where ingest writes a document's graph (``docgraph_graph_sink`` returns one).

    ``write_document`` must be idempotent: it replaces the document's chunks and
    mentions and MERGEs entities on their keys, so a redelivered ingest leaves the
    same graph; it writes plugins' ``contributions`` in the same write.  ``close``
    releases connections when the worker stops."""

    def write_document(
        self,
        document: dict[str, Any],
        chunks: list[dict[str, Any]],
        entities: list[dict[str, Any]],
        mentions: list[dict[str, Any]],
        contributions: Sequence[GraphContribution] = (),
    ) -> None: ...

    def counts(self) -> dict[str, int]: ...

    def close(self) -> None: ...
