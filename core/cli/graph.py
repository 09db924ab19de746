"""``docgraph graph stats | entity NAME | document ID_OR_NAME``: read the knowledge graph.

The same reads on every sink (``GraphSink.stats / entity / document``): the embedded
FalkorDB of ``docgraph run`` (its data dir, as ``status`` opens it), FalkorDB in
DOCGRAPH_REDIS_URL, or Neo4j (DOCGRAPH_GRAPH_SINK=neo4j).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from docgraph.core.cli.common import EXIT_REDIS_DOWN, console, err, load_plugins, redis_session

if TYPE_CHECKING:
    from pydantic import BaseModel

    from docgraph.core.settings import Settings
    from docgraph.plugins.entities.resolve import Resolver

T = TypeVar("T")
EXIT_NOT_FOUND = 1  # README "Exit status": what was asked for does not exist

graph_app = typer.Typer(
    help="Read the knowledge graph: counts, one entity (by name or alias), one document.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

JsonOption = Annotated[bool, typer.Option("--json", help="print the result as JSON")]


@contextmanager
def _reader() -> Iterator[tuple[Any, Resolver, Settings]]:
    """The configured sink, the resolver and the settings (Redis URL of the embedded
    server, when ``docgraph run`` left its data) for the block."""
    from docgraph.plugins.sinks.reads import open_reader

    loaded = load_plugins()
    with redis_session(loaded.settings, check_layout=False) as settings:
        try:
            sink, resolver = open_reader(settings, loaded.manager)
        except LookupError as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))} (exit status 2)")
            raise typer.Exit(2) from None
        try:
            yield sink, resolver, settings
        finally:
            sink.close()


def _read(call: Callable[[Any, Resolver], T]) -> T:
    """``call(sink, resolver)``.  A bad limit or an ambiguous id prefix is exit 2; a graph
    that does not answer is one line naming the setting and exit 3 (an unreachable
    Redis, FalkorDB's home, is reported by :func:`redis_session`)."""
    import redis.exceptions

    from docgraph.plugins.sinks.reads import unreachable

    with _reader() as (sink, resolver, settings):
        try:
            return call(sink, resolver)
        except ValueError as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))} (exit status 2)")
            raise typer.Exit(2) from None
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            raise
        except Exception as exc:
            line = unreachable(settings, exc)
            if line is None:
                raise
            err.print(f"[red]error:[/red] {escape(line)} (exit status {EXIT_REDIS_DOWN})")
            raise typer.Exit(EXIT_REDIS_DOWN) from None


def _print_json(result: BaseModel | None) -> None:
    console.print_json(result.model_dump_json() if result is not None else "null")


def _not_found(what: str, hint: str) -> None:
    err.print(f"[red]{escape(what)}[/red]; {escape(hint)} (exit status {EXIT_NOT_FOUND})")
    raise typer.Exit(EXIT_NOT_FOUND)


@graph_app.command("stats")
def stats_cmd(as_json: JsonOption = False) -> None:
    """Count the graph's nodes by label and edges by type.

    An entity counts under [bold]Entity[/bold] and under its own label (Group, Indicator…).

    Exit status: 0 counted; 2 bad configuration; 3 the graph (Redis/FalkorDB or Neo4j) unreachable.

    Example: [bold]docgraph graph stats[/bold]
    """
    result = _read(lambda sink, _: sink.stats())
    if as_json:
        _print_json(result)
        return
    if not result.nodes:
        console.print("the graph is empty: submit documents with `docgraph run <files>` or `docgraph submit`")
        return
    for title, counts, column in (("nodes", result.nodes, "label"), ("edges", result.edges, "type")):
        table = Table(title=title, title_justify="left")
        table.add_column(column)
        table.add_column("count", justify="right")
        for name, n in counts.items():
            table.add_row(escape(name), str(n))
        console.print(table)


@graph_app.command("entity")
def entity_cmd(
    name: Annotated[str, typer.Argument(help="a name, alias, ATT&CK ID, indicator or node key")],
    limit: Annotated[int, typer.Option(min=1, max=1000, help="documents and relations shown")] = 10,
    as_json: JsonOption = False,
) -> None:
    """Show the canonical entity a name means: label, IDs, aliases, mentions, the documents
    mentioning it and its strongest relations.

    The name goes through the alias resolver ingest uses (ATT&CK pack and
    DOCGRAPH_RESOLVE__ALIASES_FILE), so [bold]"Fancy Bear"[/bold], [bold]APT28[/bold] and
    [bold]G0007[/bold] all find [bold]attack:G0007[/bold]; a defanged indicator finds its
    one spelling; otherwise names and aliases are matched ignoring case.

    Exit status: 0 found; 1 no such entity; 2 bad option; 3 the graph unreachable.

    Example: [bold]docgraph graph entity "Fancy Bear"[/bold]
    """
    result = _read(lambda sink, resolver: sink.entity(name, resolver, limit))
    if result is None:
        if as_json:
            _print_json(None)
        _not_found(
            f"no entity named {name!r} in the graph",
            "try an alias, an ATT&CK ID (G0007) or the key `docgraph graph document <id>` lists",
        )
        return
    if as_json:
        _print_json(result)
        return
    ident = f"  ATT&CK {result.attack_id}" if result.attack_id else ""
    console.print(f"[bold]{escape(result.name)}[/bold]  {result.label}  {escape(result.key)}{ident}")
    if result.aliases:
        console.print("aliases: " + escape(", ".join(result.aliases)))
    console.print(
        f"{result.mentions} mention(s) in {result.document_count} document(s)  (matched by {result.matched_by})"
    )
    if result.alternatives:
        others = ", ".join(f"{a.key} ({a.label})" for a in result.alternatives)
        console.print(f"[yellow]the name also matches[/yellow] {escape(others)}: ask by key")
    if result.documents:
        table = Table(title="documents", title_justify="left")
        for col in ("document", "name", "mentions"):
            table.add_column(col, justify="right" if col == "mentions" else "left")
        for d in result.documents:
            table.add_row(d.id[:12], escape(d.name or ""), str(d.mentions))
        console.print(table)
    if result.relations:
        table = Table(title="relations", title_justify="left")
        for col in ("type", "", "entity", "label", "name", "count", "documents"):
            table.add_column(col, justify="right" if col in ("count", "documents") else "left")
        arrows = {"out": "→", "in": "←", "both": "—"}
        for r in result.relations:
            table.add_row(
                r.type,
                arrows[r.direction],
                escape(r.node.key),
                r.node.label,
                escape(r.node.name or ""),
                str(r.count),
                str(r.documents),
            )
        console.print(table)


@graph_app.command("document")
def document_cmd(
    ref: Annotated[
        str, typer.Argument(metavar="ID_OR_NAME", help="document id (sha256, or 8+ first characters) or name")
    ],
    limit: Annotated[int, typer.Option(min=1, max=1000, help="entities and relations shown")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Show one document's entities (by mentions) and the relations among them.

    CO_OCCURS rows count the chunks of this document mentioning both entities,
    next to the edge's count over the whole graph; plugins' typed edges follow.

    Exit status: 0 found; 1 no such document; 2 bad option or ambiguous id prefix; 3 the graph unreachable.

    Example: [bold]docgraph graph document report.pdf[/bold]
    """
    result = _read(lambda sink, _: sink.document(ref, limit))
    if result is None:
        if as_json:
            _print_json(None)
        _not_found(
            f"no document {ref!r} in the graph",
            "give its id (the document_id of `docgraph status <job> --json`) or its file name",
        )
        return
    if as_json:
        _print_json(result)
        return
    kind = (
        f"  {result.type} ({result.confidence:.2f})" if result.type and result.confidence is not None else ""
    )
    console.print(f"[bold]{escape(result.name or '')}[/bold]  {result.id}{kind}")
    console.print(
        f"{result.chunks} chunk(s), {result.entity_count} entities, {result.mention_count} mention(s)"
    )
    if result.same_name:
        console.print(
            f"[yellow]{len(result.same_name)} other document(s) have this name[/yellow]: "
            + ", ".join(i[:12] for i in result.same_name)
            + " (ask by id)"
        )
    if result.entities:
        table = Table(title="entities", title_justify="left")
        for col in ("entity", "label", "name", "ATT&CK", "mentions"):
            table.add_column(col, justify="right" if col == "mentions" else "left")
        for e in result.entities:
            table.add_row(escape(e.key), e.label, escape(e.name), e.attack_id or "", str(e.mentions))
        console.print(table)
    if result.relations:
        table = Table(title="relations", title_justify="left")
        for col in ("type", "source", "target", "here", "graph", "details"):
            table.add_column(col, justify="right" if col in ("here", "graph") else "left")
        for r in result.relations:
            details = ", ".join(f"{k}={v}" for k, v in r.properties.items())
            if r.stage and r.stage != "ingest":
                details = f"stage={r.stage}" + (f", {details}" if details else "")
            table.add_row(
                r.type,
                escape(r.source.name or r.source.key),
                escape(r.target.name or r.target.key),
                str(r.count),
                "" if r.total is None else str(r.total),
                escape(details),
            )
        console.print(table)
