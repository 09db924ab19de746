"""The docgraph hooks of docgraph-wordcount, registered by the ``docgraph`` entry point.

* a stage, ``wordcount``, placed between extract and ingest;
* typed settings, ``DOCGRAPH_WORDCOUNT__MIN_LENGTH`` / ``__TOP`` / ``__STOPWORDS``;
* a graph contribution: ``(:Document)-[:HAS_WORD {count}]->(:Word {key})``;
* a command: ``docgraph wordcount count FILE…``;
* lifecycle hooks that log the settings a worker runs with.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, Field

from docgraph.core import StageContext, StageResult, StageSpec
from docgraph.core.settings import RetryPolicy
from docgraph.plugins.hookspecs import hookimpl
from docgraph.plugins.types import GraphContribution, GraphEdge, GraphNode, NodeRef
from docgraph_wordcount.counting import count_words

log = logging.getLogger("docgraph_wordcount")
NAMESPACE = "wordcount"


class WordcountSettings(BaseModel):
    """``DOCGRAPH_WORDCOUNT__<FIELD>``."""

    min_length: int = Field(4, ge=1, description="shortest word counted")
    top: int = Field(10, ge=1, le=1000, description="how many of the most frequent words to keep")
    stopwords: list[str] = Field(
        default_factory=lambda: ["this", "that", "with", "from", "have", "were", "which"],
        description="words never counted",
    )


def wordcount(ctx: StageContext) -> StageResult:
    """Count the words of the extracted text; keep the ``top`` most frequent."""
    settings = ctx.plugin_settings(NAMESPACE, WordcountSettings)
    extracted = ctx.objects.get_json(ctx.output_of("extract")["artifact"])
    counts = count_words(extracted["text"], settings.min_length, settings.stopwords)
    top = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: settings.top])
    ctx.progress(1.0, f"{len(counts)} distinct words")
    return StageResult(output={"words": sum(counts.values()), "distinct": len(counts), "top": top})


@hookimpl
def docgraph_add_stages(settings: Any) -> list[StageSpec]:
    return [
        StageSpec(
            "wordcount",
            wordcount,
            description="the most frequent words of a document",
            after=("extract",),  # it needs the text
            before=("ingest",),  # ingest writes its words with the document
            concurrency=4,
            retry=RetryPolicy(attempts=2, backoff=0.5),
        )
    ]


@hookimpl
def docgraph_settings_model() -> tuple[str, type[BaseModel]]:
    return NAMESPACE, WordcountSettings


@hookimpl
def docgraph_graph_contribution(ctx: StageContext, document: dict[str, Any]) -> GraphContribution | None:
    top: dict[str, int] = ctx.output_of("wordcount").get("top", {})
    if not top:
        return None
    words = [GraphNode(label="Word", key=w, properties={"text": w}) for w in top]
    return GraphContribution(
        stage="wordcount",
        nodes=words,
        edges=[
            GraphEdge(
                type="HAS_WORD", source=NodeRef.document(), target=n.ref(), properties={"count": top[n.key]}
            )
            for n in words
        ],
    )


@hookimpl
def docgraph_worker_started(settings: Any) -> None:
    log.info("wordcount ready: %s", settings.plugin(NAMESPACE, WordcountSettings))


@hookimpl
def docgraph_worker_stopping() -> None:
    log.info("wordcount stopping")


@hookimpl
def docgraph_add_commands(app: Any) -> None:
    from docgraph_wordcount.commands import wordcount_app

    app.add_typer(wordcount_app, name="wordcount")
