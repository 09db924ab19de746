"""The plugin manager: finds plugins and collects the stages they declare."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

import pluggy

from docgraph.core.errors import ConfigError
from docgraph.plugins import hookspecs

if TYPE_CHECKING:
    from docgraph.core.settings import Settings
    from docgraph.core.stage import StageSpec


def plugin_manager(settings: Settings) -> pluggy.PluginManager:
    """Built-in and third-party plugins (entry-point group ``docgraph``) plus
    the modules named in ``settings.plugins``."""
    pm = pluggy.PluginManager("docgraph")
    pm.add_hookspecs(hookspecs)
    pm.load_setuptools_entrypoints("docgraph")
    for name in settings.plugins:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(f"DOCGRAPH_PLUGINS names {name!r}, which cannot be imported: {exc}") from exc
        if not pm.is_registered(module):
            pm.register(module, name=name)
    return pm


def collect_stages(pm: pluggy.PluginManager, settings: Settings) -> dict[str, StageSpec]:
    """Every declared stage by name; later registrations override built-ins."""
    stages: dict[str, StageSpec] = {}
    # pluggy calls the most recently registered plugin first: reverse so that
    # plugins named in DOCGRAPH_PLUGINS override built-in stages.
    for declared in reversed(pm.hook.docgraph_add_stages(settings=settings)):
        for spec in declared or ():
            stages[spec.name] = spec
    missing = [s for s in settings.topology if s not in stages]
    if missing:
        raise ConfigError(
            f"the topology names stages no plugin provides: {missing} "
            f"(provided: {sorted(stages)}); install or list the plugin in DOCGRAPH_PLUGINS"
        )
    return stages
