"""What stages use, built once per worker process from the settings."""

from __future__ import annotations

from typing import Any

from docgraph.core.settings import Settings
from docgraph.core.store import open_store


def build_services(settings: Settings, pm: Any) -> dict[str, Any]:
    """``objects`` (object store), ``pm`` (plugin manager), ``graph`` (sink, lazily)."""
    services: dict[str, Any] = {"objects": open_store(settings), "pm": pm}
    services["graph"] = pm.hook.docgraph_graph_sink(settings=settings)
    return services
