"""A DOCGRAPH_PLUGINS test plugin using every stage-plugin hook (tests/plugins)."""

from __future__ import annotations

from typing import Any

import typer
from pydantic import BaseModel, Field

from docgraph.core import StageContext, StageSpec
from docgraph.core.settings import RetryPolicy
from docgraph.plugins.hookspecs import hookimpl
from docgraph.plugins.types import GraphContribution, GraphEdge, GraphNode, NodeRef

EVENTS: list[str] = []  # lifecycle calls seen in this process


class DemoSettings(BaseModel):
    greeting: str = "hello"
    threshold: int = Field(2, ge=0)
    api_token: str = Field("", repr=False)
    signing: str = Field("", repr=False)


async def shout(ctx: StageContext) -> dict[str, Any]:
    s = ctx.plugin_settings("demo", DemoSettings)
    text = ctx.objects.get_json(ctx.output_of("extract")["artifact"])["text"]
    loud = sorted({w.strip(".,").upper() for w in text.split() if len(w.strip(".,")) > s.threshold})
    return {"greeting": s.greeting, "loud": loud, "events_at_run": list(EVENTS)}


@hookimpl
def docgraph_add_stages(settings: Any) -> list[StageSpec]:
    return [
        StageSpec(
            "shout",
            shout,
            after=("extract",),
            before=("ingest",),
            concurrency=3,
            retry=RetryPolicy(attempts=4, backoff=0.01),
        )
    ]


@hookimpl
def docgraph_settings_model() -> tuple[str, type[BaseModel]]:
    return "demo", DemoSettings


@hookimpl
def docgraph_worker_started(settings: Any, services: Any) -> None:
    EVENTS.append(f"started:{settings.plugin('demo', DemoSettings).greeting}")


@hookimpl
async def docgraph_worker_stopping(services: Any) -> None:
    EVENTS.append("stopping")


@hookimpl
def docgraph_graph_contribution(ctx: StageContext, document: dict[str, Any]) -> GraphContribution | None:
    loud = ctx.output_of("shout").get("loud")
    if not loud:
        return None
    nodes = [GraphNode(label="Loud", key=w, properties={"text": w, "size": len(w)}) for w in loud]
    edges = [
        GraphEdge(type="SHOUTS", source=NodeRef.document(), target=n.ref(), properties={"rank": i})
        for i, n in enumerate(nodes)
    ]
    edges.append(GraphEdge(type="FIRST_LOUD", source=NodeRef.chunk(0), target=nodes[0].ref()))
    return GraphContribution(stage="shout", nodes=nodes, edges=edges)


demo_app = typer.Typer(help="demo plugin commands", no_args_is_help=True)


@demo_app.command("hello")
def hello() -> None:
    """Print the configured greeting."""
    from docgraph.core.settings import Settings
    from docgraph.plugins.manager import load_plugins

    print(load_plugins(Settings()).settings.plugin("demo", DemoSettings).greeting)


@hookimpl
def docgraph_add_commands(app: Any) -> None:
    app.add_typer(demo_app, name="demo")
