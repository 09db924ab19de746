"""The root ``docgraph`` command: every built-in command registered in reading order, plus plugins'."""

from __future__ import annotations

import typer

from docgraph.core.cli import dlq, jobs, monitor, run, serve, worker

app = typer.Typer(
    help="docgraph: turn a stream of documents into a knowledge graph.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(dlq.dlq_app, name="dlq")
app.command()(run.run)
app.command()(worker.worker)
app.command()(worker.health)
app.command()(jobs.submit)
app.command()(jobs.status)
app.command()(jobs.jobs)
app.command()(jobs.cancel)
app.command()(monitor.monitor)
app.command()(serve.serve)
app.command("asyncapi")(serve.asyncapi_cmd)


def _add_plugin_commands() -> None:
    """Sub-commands contributed by installed plugins (entry points only, so a
    broken configuration still leaves ``--help`` working)."""
    import pluggy

    from docgraph.plugins import hookspecs

    pm = pluggy.PluginManager("docgraph")
    pm.add_hookspecs(hookspecs)
    pm.load_setuptools_entrypoints("docgraph")
    pm.hook.docgraph_add_commands(app=app)


def main() -> None:
    _add_plugin_commands()
    app()
