"""The hooks a docgraph plugin can implement: the plugin author's manual.

A plugin is a module (or object) with functions marked ``@hookimpl`` and named
like the specs below.  Register it under the ``docgraph`` entry-point group in
your ``pyproject.toml``::

    [project.entry-points.docgraph]
    my-plugin = "my_package.docgraph_plugin"

or list its module in ``DOCGRAPH_PLUGINS``.  Built-in stages and extractors are
plugins like any other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from docgraph.core.settings import Settings
    from docgraph.core.stage import StageSpec
    from docgraph.plugins.types import EntityPattern, ExtractedDocument

hookspec = pluggy.HookspecMarker("docgraph")
hookimpl = pluggy.HookimplMarker("docgraph")


@hookspec
def docgraph_add_stages(settings: Settings) -> list[StageSpec]:
    """Declare stages this plugin provides.

    Which stages run, and in which order, comes from ``settings.topology``
    (stage name -> predecessor names); a plugin only says what each stage
    does.  Two plugins declaring the same name is a configuration error.
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


@hookspec(firstresult=True)
def docgraph_graph_sink(settings: Settings) -> Any:
    """Return the graph sink ingest writes to (Neo4j, FalkorDB...), or None."""
    raise NotImplementedError


@hookspec
def docgraph_add_commands(app: Any) -> None:
    """Add sub-commands to the ``docgraph`` CLI (a ``typer.Typer``), e.g.
    ``app.add_typer(my_app, name="ner")``.  Keep imports inside the commands so
    ``docgraph --help`` stays fast."""
    raise NotImplementedError
