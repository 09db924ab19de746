"""The root ``docgraph`` command: every built-in command registered in reading order, plus plugins'."""

from __future__ import annotations

import typer

from docgraph.core.cli import (
    acl,
    config,
    dlq,
    events,
    graph,
    jobs,
    monitor,
    partitions,
    run,
    serve,
    stage,
    worker,
)

app = typer.Typer(
    help="docgraph: turn a stream of documents into a knowledge graph.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(dlq.dlq_app, name="dlq")
app.add_typer(stage.stage_app, name="stage")
app.add_typer(partitions.partitions_app, name="partitions")
app.command()(run.run)
app.command()(worker.worker)
app.command()(worker.health)
app.command()(jobs.submit)
app.command()(jobs.status)
app.command()(jobs.jobs)
app.command()(jobs.cancel)
app.command()(monitor.monitor)
app.command()(events.events)
app.add_typer(graph.graph_app, name="graph")
app.command()(serve.serve)
app.command("asyncapi")(serve.asyncapi_cmd)
app.add_typer(config.config_app, name="config")
app.command()(acl.acl)


def _add_plugin_commands() -> None:
    """Sub-commands contributed by plugins: installed ones (entry points) and those
    listed in DOCGRAPH_PLUGINS.  A configuration that does not load (bad settings, a
    module that cannot be imported) adds only the installed plugins' commands, so
    ``--help`` keeps working; the command itself then reports the problem."""
    import pluggy
    from pydantic import ValidationError

    from docgraph.core.errors import ConfigError
    from docgraph.core.settings import Settings
    from docgraph.plugins import hookspecs
    from docgraph.plugins.manager import plugin_manager

    try:
        pm = plugin_manager(Settings())
    except (ValidationError, ConfigError):
        pm = pluggy.PluginManager("docgraph")
        pm.add_hookspecs(hookspecs)
        pm.load_setuptools_entrypoints("docgraph")
    pm.hook.docgraph_add_commands(app=app)


def main() -> None:
    _add_plugin_commands()
    app()
