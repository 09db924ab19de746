"""``GET /v1/entities?name=`` and ``GET /v1/documents/{id}/graph``: reads of the knowledge graph.

The graph sink is the one workers write with (``docgraph_graph_sink`` from the
settings), opened on the first read and closed when the app stops; its calls are
synchronous, so they run in a thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Query

from docgraph.core.api.auth import require_token
from docgraph.core.api.deps import AUTH_ERRORS, Api
from docgraph.core.api.problems import Problem
from docgraph.core.settings import Settings
from docgraph.plugins.types import DocumentGraph, EntityInfo

log = logging.getLogger("docgraph.api")
T = TypeVar("T")

router = APIRouter(prefix="/v1", tags=["graph"], dependencies=[Depends(require_token)])

GRAPH_ERRORS: dict[int | str, dict[str, Any]] = {
    503: {
        "description": "the graph (FalkorDB in Redis, or Neo4j) does not answer; `detail` names the setting"
    },
    **AUTH_ERRORS,
}


class GraphReader:
    """The app's graph sink and alias resolver, built from the settings on first use
    (an API that never reads the graph never connects to it)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._opened: tuple[Any, Any] | None = None

    def _open(self) -> tuple[Any, Any]:
        with self._lock:
            if self._opened is None:
                from docgraph.plugins.manager import plugin_manager
                from docgraph.plugins.sinks.reads import open_reader

                self._opened = open_reader(self.settings, plugin_manager(self.settings))
            return self._opened

    def call(self, action: Callable[[Any, Any], T]) -> T:
        sink, resolver = self._open()
        return action(sink, resolver)

    async def run(self, action: Callable[[Any, Any], T]) -> T:
        """``action(sink, resolver)`` in a thread; failures become problems that say what to fix."""
        from docgraph.plugins.sinks.reads import unreachable

        try:
            return await asyncio.to_thread(self.call, action)
        except ValueError as exc:
            raise Problem(400, str(exc)) from None
        except LookupError as exc:
            raise Problem(503, str(exc)) from None
        except Exception as exc:
            line = unreachable(self.settings, exc)
            if line is None:
                raise
            log.warning("graph read failed: %s", line)
            raise Problem(503, line, headers={"Retry-After": "5"}) from None

    def close(self) -> None:
        with self._lock:
            if self._opened is not None:
                self._opened[0].close()
                self._opened = None


@router.get(
    "/entities",
    response_model=EntityInfo,
    summary="The canonical entity a name or alias means: IDs, aliases, mentions, documents, relations",
    description=(
        "The name goes through the alias resolver ingest uses (so `Fancy Bear`, `APT28` and "
        "`G0007` all answer `attack:G0007`), then exact keys (a defanged indicator finds its one "
        "spelling), then a case-insensitive match on names and aliases. Several matches: the "
        "most mentioned, the others in `alternatives`."
    ),
    responses={404: {"description": "no entity has that name"}, **GRAPH_ERRORS},
)
async def get_entity(
    api: Api,
    name: Annotated[str, Query(min_length=1, max_length=1000, description="a name, alias, ID or key")],
    limit: Annotated[int, Query(ge=1, le=1000, description="documents and relations returned")] = 10,
) -> EntityInfo:
    found = await api.graph.run(lambda sink, resolver: sink.entity(name, resolver, limit))
    if found is None:
        raise Problem(
            404,
            f"no entity named {name!r} in the graph; try an alias, an ATT&CK ID (G0007) or a key "
            "from GET /v1/documents/{id}/graph",
        )
    result: EntityInfo = found
    return result


@router.get(
    "/documents/{id}/graph",
    response_model=DocumentGraph,
    summary="A document's entities (by mentions) and the relations among them",
    description=(
        "`id` is the document id (its sha256: the `document_id` of ingest's output), "
        "its first 8+ characters, or its name. CO_OCCURS relations count this document's "
        "chunks mentioning both entities (`count`) beside the edge's graph-wide count (`total`)."
    ),
    responses={
        400: {"description": "an id prefix that names several documents"},
        404: {"description": "no such document"},
        **GRAPH_ERRORS,
    },
)
async def get_document_graph(
    api: Api,
    id: Annotated[str, Path(min_length=1, max_length=1000, description="document id or name")],
    limit: Annotated[int, Query(ge=1, le=1000, description="entities and relations returned")] = 50,
) -> DocumentGraph:
    found = await api.graph.run(lambda sink, _: sink.document(id, limit))
    if found is None:
        raise Problem(
            404,
            f"no document {id!r} in the graph; give its id (ingest's document_id in "
            "GET /v1/jobs/{id}) or its name",
        )
    result: DocumentGraph = found
    return result
