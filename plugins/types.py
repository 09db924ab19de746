"""Data passed between plugins: extracted documents, chunks, entity mentions."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field, field_validator

if TYPE_CHECKING:
    from docgraph.plugins.entities.resolve import Resolver

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


class RelationMention(BaseModel):
    """A mention as relation extractors see it: offsets within its chunk's text and
    the canonical entity it resolved to (``label`` is the graph label: Group, Tool…)."""

    text: str
    label: str = Field(description="graph label of the canonical entity (Group, Malware, Tool, ...)")
    ner_label: str = Field(description="the label NER gave the mention")
    key: str = Field(description="the canonical entity's key")
    start: int
    end: int


class Relation(BaseModel):
    """A typed relation an extractor found: ``source`` and ``target`` index the mentions
    it was given; ``start``/``end`` are the evidence's offsets in the chunk text."""

    type: str
    source: int = Field(ge=0)
    target: int = Field(ge=0)
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    confidence: float = Field(ge=0.0, le=1.0)
    extractor: str = Field(min_length=1, description="the rule or model that found it (edge provenance)")

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        return _identifier(value, "relation type")


# ------------------------------------------------------------------ graph reads
# What ``GraphSink.stats / entity / document`` return: plain values, filled the same
# way by every sink (plugins/sinks/reads.py), so the CLI, the API and tests do not
# care which graph answered.


class GraphStats(BaseModel):
    """Node counts by label (an entity counts under ``Entity`` and its own label) and
    edge counts by type, over the whole graph."""

    nodes: dict[str, int] = Field(default_factory=dict, description="label -> nodes")
    edges: dict[str, int] = Field(default_factory=dict, description="edge type -> edges")


class NodeSummary(BaseModel):
    """The other end of a relation: an entity, a contributed node, a document or a chunk."""

    key: str = Field(description="the node's key (``attack:G0007``); a document's or chunk's id")
    label: str = Field(description="its most specific label (``Group``, not ``Entity``)")
    name: str | None = None


class EntityDocument(BaseModel):
    """A document mentioning an entity."""

    id: str = Field(description="the document id (its sha256)")
    name: str | None = None
    mentions: int = Field(description="mentions of the entity in this document")


class EntityRelation(BaseModel):
    """One relation of an entity, aggregated over documents.

    ``CO_OCCURS`` (``direction`` ``both``): ``count`` chunks mention both, in
    ``documents`` documents.  Other types: ``count`` edges (one per document
    that contributed it), ``documents`` distinct documents."""

    type: str
    direction: Literal["out", "in", "both"]
    node: NodeSummary
    count: int
    documents: int


class EntityInfo(BaseModel):
    """A canonical entity, how often and where it is mentioned, and its strongest relations."""

    key: str = Field(description="stable node key, e.g. ``attack:G0007``")
    label: str
    name: str
    attack_id: str | None = None
    aliases: list[str] = Field(default_factory=list)
    matched_by: Literal["resolver", "key", "name"] = Field(
        description="how the name was found: the alias resolver ingest uses, the exact key, "
        "or a case-insensitive match on name/aliases"
    )
    mentions: int = Field(description="mentions over the whole graph")
    document_count: int = Field(description="documents mentioning it (``documents`` is capped by limit)")
    documents: list[EntityDocument] = Field(default_factory=list, description="most mentions first")
    relations: list[EntityRelation] = Field(
        default_factory=list, description="CO_OCCURS by count, then other edge types by count"
    )
    alternatives: list[NodeSummary] = Field(
        default_factory=list, description="other entities the name also matched (fewer mentions)"
    )


class DocumentEntity(BaseModel):
    """An entity a document mentions."""

    key: str
    label: str
    name: str
    attack_id: str | None = None
    mentions: int = Field(description="mentions in this document")


class DocumentRelation(BaseModel):
    """A relation a document evidences.

    ``CO_OCCURS``: ``count`` chunks of this document mention both entities and
    ``total`` is the edge's count over the whole graph.  Contributed types
    (``USES``, ``HAS_WORD``…): ``count`` 1, ``stage`` and ``properties`` from the edge."""

    type: str
    source: NodeSummary
    target: NodeSummary
    count: int
    total: int | None = None
    stage: str | None = None
    properties: dict[str, Scalar] = Field(default_factory=dict)


class DocumentGraph(BaseModel):
    """A document, its entities (most mentioned first) and the relations among them."""

    id: str
    name: str | None = None
    type: str | None = Field(None, description="classify's label")
    confidence: float | None = None
    chunks: int
    entity_count: int = Field(description="distinct entities (``entities`` is capped by limit)")
    mention_count: int
    entities: list[DocumentEntity] = Field(default_factory=list)
    relations: list[DocumentRelation] = Field(default_factory=list)
    same_name: list[str] = Field(
        default_factory=list, description="ids of other documents with this name (ask by id)"
    )


@runtime_checkable
class GraphSink(Protocol):
    """Where ingest writes a document's graph (``docgraph_graph_sink`` returns one).

    ``write_document`` must be idempotent: it replaces the document's chunks and
    mentions and MERGEs entities on their keys, so a redelivered ingest leaves the
    same graph; it writes plugins' ``contributions`` in the same write.  ``close``
    releases connections when the worker stops.

    The reads (``docgraph graph``, ``GET /v1/entities``, ``GET /v1/documents/{id}/graph``)
    are synchronous and read-only: ``stats``; ``entity``, which finds a name through
    ``resolver`` (the one ingest uses, so an alias finds its canonical node) and falls
    back to a case-insensitive match on names and aliases; ``document`` by id or
    name.  Both return None when nothing matches."""

    def write_document(
        self,
        document: dict[str, Any],
        chunks: list[dict[str, Any]],
        entities: list[dict[str, Any]],
        mentions: list[dict[str, Any]],
        contributions: Sequence[GraphContribution] = (),
    ) -> None: ...

    def counts(self) -> dict[str, int]: ...

    def stats(self) -> GraphStats: ...

    def entity(self, name: str, resolver: Resolver | None = None, limit: int = 10) -> EntityInfo | None: ...

    def document(self, id_or_name: str, limit: int = 50) -> DocumentGraph | None: ...

    def close(self) -> None: ...
