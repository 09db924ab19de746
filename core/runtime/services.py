"""What stages use, built once per worker process from the settings."""

from __future__ import annotations

import pluggy

from docgraph.core.settings import Settings
from docgraph.core.stage import Services
from docgraph.core.store import open_store


def build_services(settings: Settings, pm: pluggy.PluginManager) -> Services:
    """The object store, the plugin manager and the graph sink the settings name."""
    return Services(
        objects=open_store(settings), plugins=pm, graph=pm.hook.docgraph_graph_sink(settings=settings)
    )
