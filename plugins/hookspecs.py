"""The hooks a docgraph plugin can implement: the plugin author's manual.

A plugin is a module (or object) with functions marked ``@hookimpl`` and named
like the specs below.  Register it under the ``docgraph`` entry-point group in
your ``pyproject.toml``::

    [project.entry-points.docgraph]
    my-plugin = "my_package.docgraph_plugin"

or list its module in ``DOCGRAPH_PLUGINS``.  Built-in stages and extractors are
plugins like any other.  docs/plugins.md walks from an empty folder to a
stage running in ``docgraph run`` and tested with ``docgraph.testing``.

What a stage plugin usually implements, in the order docgraph calls them:

1. :func:`docgraph_settings_model` — its typed settings (``DOCGRAPH_<NS>__<FIELD>``);
2. :func:`docgraph_add_stages` — its stages, where they run, their retry policy;
3. :func:`docgraph_worker_started` / :func:`docgraph_worker_stopping` — open and
   close what its stages share in a worker process;
4. :func:`docgraph_graph_contribution` — the nodes and edges its results add to
   the graph, written by ingest with the document;
5. :func:`docgraph_add_commands` — its ``docgraph <name> …`` commands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from pydantic import BaseModel

    from docgraph.core.settings import Settings
    from docgraph.core.stage import Services, StageContext, StageSpec
    from docgraph.plugins.types import (
        AliasEntry,
        EntityPattern,
        ExtractedDocument,
        GraphContribution,
        Relation,
        RelationMention,
    )

hookspec = pluggy.HookspecMarker("docgraph")
hookimpl = pluggy.HookimplMarker("docgraph")


@hookspec
def docgraph_add_stages(settings: Settings) -> list[StageSpec]:
    """Declare stages this plugin provides.

    A :class:`~docgraph.core.stage.StageSpec` says what the stage does and
    carries its defaults: where it runs (``after`` = the stages it waits for,
    ``before`` = stages that must also wait for it) and its ``concurrency``,
    ``retry``, ``visibility_timeout`` and ``max_deliveries``, each overridden by
    ``DOCGRAPH_STAGES__<name>__<field>``::

        @hookimpl
        def docgraph_add_stages(settings):
            return [StageSpec("wordcount", count_words, after=("extract",), before=("ingest",))]

    The effective topology is ``DOCGRAPH_TOPOLOGY`` when it is set (used as
    given: ``after``/``before`` are ignored); otherwise the default topology
    (extract → classify ∥ ner → ingest) with every placed stage inserted.
    A stage of the topology that no plugin declares is a ConfigError; a
    declared stage the topology leaves out is logged as a warning and never runs.

    Two plugins declaring the same stage name is a ConfigError, with one
    deliberate exception: a plugin listed in ``DOCGRAPH_PLUGINS`` (or passed to
    ``docgraph.testing.run_stages(plugins=…)``) replaces a stage of an installed
    (entry-point) plugin, built-ins included — the user named it, so the
    replacement is explicit.  ``settings`` is the configuration before plugins
    are applied (``settings.topology`` is the default or the explicit one).
    """
    raise NotImplementedError


@hookspec
def docgraph_settings_model() -> tuple[str, type[BaseModel]] | None:
    """Declare this plugin's settings: ``(namespace, pydantic model)``.

    Every field is read from ``DOCGRAPH_<NAMESPACE>__<FIELD>`` (or ``.env``),
    validated by the model (a bad value stops the worker with the variable's
    name), counted as a known variable and shown, secrets masked, by
    ``docgraph config show``.  A stage reads them with
    ``ctx.plugin_settings("<namespace>", Model)``; any hook receiving
    ``settings`` with ``settings.plugin("<namespace>", Model)``::

        class WordcountSettings(BaseModel):
            min_length: int = Field(3, ge=1, description="shortest word counted")

        @hookimpl
        def docgraph_settings_model():
            return "wordcount", WordcountSettings

    The namespace is a lower-case identifier that no core setting and no other
    plugin uses (a clash is a ConfigError).  Give every field a default, mark
    secrets ``Field(repr=False)`` (also masked: names containing password,
    secret, token or key).
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def docgraph_sniff_content_type(head: bytes, name: str | None) -> str | None:
    """Return the MIME type of a document from its first bytes, or None.

    Called before extraction; sniff content, never trust only the file name.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def docgraph_extract_text(data: bytes, content_type: str, settings: Settings) -> ExtractedDocument | None:
    """Turn a document's bytes into normalized text and chunks.

    Return None when this plugin does not handle ``content_type`` so the next
    plugin is asked.  Raise :class:`docgraph.core.errors.PermanentError` with an
    actionable reason for bad input (encrypted, corrupt, no text layer...).
    """
    raise NotImplementedError


@hookspec
def docgraph_entity_patterns(settings: Settings) -> list[EntityPattern]:
    """Contribute regex or gazetteer entity rules used by the ner stage."""
    raise NotImplementedError


@hookspec
def docgraph_entity_aliases(settings: Settings) -> list[AliasEntry]:
    """Contribute an alias pack: names that resolve to one canonical entity.

    Ingest keys every mention by its canonical entity, so ``APT28``,
    ``Fancy Bear`` and ``Sofacy`` in any document are one ``:Group`` node
    (``key: "attack:G0007"``, ``attack_id``, ``aliases``).  The built-in
    ATT&CK pack (``docgraph.plugins.entities.attack``) is such a plugin; the
    user's own file (``DOCGRAPH_RESOLVE__ALIASES_FILE``, YAML or CSV) is read
    the same way and wins over every pack::

        @hookimpl
        def docgraph_entity_aliases(settings):
            return [
                AliasEntry(alias=a, canonical="Volt Typhoon", label="Group", id="acme:volt-typhoon",
                           mention_labels=("Organization",))
                for a in ("Volt Typhoon", "BRONZE SILHOUETTE", "Vanguard Panda")
            ]

    A mention resolves when its text (names: whitespace collapsed, case-folded
    unless ``case_sensitive``) is an alias and its NER label is one of
    ``mention_labels`` (any, when empty).  An alias of several entities picks
    the one whose ``mention_labels`` fit; still several, the mention stays
    unresolved (its own node).  Mark weak names (``Ping``, ``at``)
    ``case_sensitive=True, require_label=True``.  Entries of one ``id`` must
    agree on ``label``, ``canonical`` and ``properties`` (the first one wins).
    Called once per process, when ingest first runs: return data, not a live view.
    """
    raise NotImplementedError


@hookspec
def docgraph_extract_relations(
    text: str, mentions: list[RelationMention], settings: Settings
) -> list[Relation]:
    """Find typed relations between the entities mentioned in one chunk.

    Called by ingest once per chunk with two or more mentions, for every plugin
    implementing it; ``text`` is the chunk's text and ``mentions`` its mentions
    (offsets into ``text``, each with its canonical entity), in text order.
    Return :class:`~docgraph.plugins.types.Relation` s whose ``source`` and
    ``target`` index ``mentions``.  Ingest writes those with ``confidence`` of at
    least ``DOCGRAPH_RELATIONS__MIN_CONFIDENCE`` as ``(:Entity)-[:TYPE]->(:Entity)``,
    one edge per entity pair, type and document, carrying the evidence of the
    most confident one: ``document``, ``chunk``, ``start``/``end`` (offsets in the
    document text), ``evidence`` (the sentence), ``extractor``, ``confidence``
    and ``count`` (how many times the document says so).  Reprocessing or
    deleting the document removes its edges.  The built-in rules
    (``docgraph.plugins.relations.rules``) write ``USES``, ``TARGETS``,
    ``EXPLOITS`` and ``ATTRIBUTED_TO``; other types are yours to name.

    Example::

        @hookimpl
        def docgraph_extract_relations(text, mentions, settings):
            out = []
            for i, a in enumerate(mentions):
                for j, b in enumerate(mentions):
                    if a.label == "Malware" and b.label == "Indicator" and "beacons to" in text[a.end:b.start]:
                        out.append(Relation(type="COMMUNICATES_WITH", source=i, target=j, start=a.start,
                                            end=b.end, confidence=0.9, extractor="c2-rule"))
            return out
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def docgraph_graph_sink(settings: Settings) -> Any:
    """Return the graph sink ingest writes to (Neo4j, FalkorDB...), or None."""
    raise NotImplementedError


@hookspec
def docgraph_graph_contribution(ctx: StageContext, document: dict[str, Any]) -> GraphContribution | None:
    """Return the nodes and edges a stage's results add to the graph, or None.

    Called by ingest for every job, once per plugin implementing it; what it
    returns is written in the same write as the document (one transaction on
    Neo4j; the same statement sequence on FalkorDB), so the results are
    queryable with the document's graph.  Read your stage's output with
    ``ctx.output_of("<stage>")`` (empty when the stage did not run for this
    job: return None).  ``document`` is the Document row (``id``, ``name``, …).

    * Nodes MERGE on ``(label, key)``: choose a stable key (``word:graph``), so
      every document sharing it links to one node; properties are SET.
    * Edges connect :class:`~docgraph.plugins.types.NodeRef` s: contributed
      nodes, the document (``NodeRef.document()``) or one of its chunks
      (``NodeRef.chunk(i)``), and carry provenance: ``document`` (its id) and
      ``stage`` (the contribution's stage), besides their own properties.
    * Reprocessing the document replaces its edges of the contributed types
      (no duplicates); nodes are shared and stay.

    Example::

        @hookimpl
        def docgraph_graph_contribution(ctx, document):
            out = ctx.output_of("wordcount")
            if not out:
                return None
            words = [GraphNode(label="Word", key=w, properties={"text": w}) for w in out["top"]]
            return GraphContribution(
                stage="wordcount",
                nodes=words,
                edges=[GraphEdge(type="HAS_WORD", source=NodeRef.document(), target=n.ref(),
                                 properties={"count": out["top"][n.key]}) for n in words],
            )
    """
    raise NotImplementedError


@hookspec
def docgraph_worker_started(settings: Settings, services: Services) -> Any:
    """Called once when a worker process starts, before it reads any job.

    Open what your stages share for the life of the process (a model, a client
    pool) and keep it in your plugin module, or check that a dependency
    answers.  May be ``async def``.  Raising stops the worker from starting
    (``docgraph worker`` exits with the error): fail fast on bad configuration.
    ``settings`` is the effective configuration (plugin settings included).
    """
    raise NotImplementedError


@hookspec
def docgraph_worker_stopping(settings: Settings, services: Services) -> Any:
    """Called once when a worker process stops, after its in-flight jobs have
    finished or been handed back and before ``services`` are closed.

    Release what :func:`docgraph_worker_started` opened (it is called even when
    a started hook failed, so check what is there to close).  May be
    ``async def``.  An exception is logged and does not prevent other plugins'
    clean-up.
    """
    raise NotImplementedError


@hookspec
def docgraph_add_commands(app: Any) -> None:
    """Add sub-commands to the ``docgraph`` CLI (a ``typer.Typer``), e.g.
    ``app.add_typer(my_app, name="ner")``.  Called for installed plugins and for
    those listed in ``DOCGRAPH_PLUGINS`` (when the configuration is valid).
    Keep imports inside the commands so ``docgraph --help`` stays fast."""
    raise NotImplementedError
