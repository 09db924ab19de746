"""The plugin manager: finds plugins, collects their stages and settings, and
computes the effective configuration every process uses.

:func:`load_plugins` is the one place that turns the settings read from the
environment into the settings the pipeline runs with:

* the topology: ``DOCGRAPH_TOPOLOGY`` as given when it is set, otherwise the
  default topology with every stage a plugin places (``StageSpec.after`` /
  ``before``) inserted;
* per-stage options: each stage's ``StageSpec`` defaults, overridden field by
  field by ``DOCGRAPH_STAGES__<name>__<field>``;
* plugin settings: each ``docgraph_settings_model`` namespace read from
  ``DOCGRAPH_<NAMESPACE>__<FIELD>``.

The worker, ``docgraph run``, the CLI and the API all call it (the CLI through
``load_settings``), so the JobStore, runners and dead-letter tools agree on the
stages.  Calling it again on its own result changes nothing.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pluggy
from pydantic import BaseModel, Field, ValidationError, create_model
from pydantic_settings import BaseSettings, SettingsConfigDict

from docgraph.core.errors import ConfigError
from docgraph.core.settings import ENV_PREFIX, RetryPolicy, Settings, StageOptions
from docgraph.core.topology import Topology
from docgraph.plugins import hookspecs

if TYPE_CHECKING:
    from docgraph.core.stage import StageSpec

NAMESPACE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
OPTION_FIELDS = ("concurrency", "retry", "visibility_timeout", "max_deliveries")


@dataclass(frozen=True)
class Declared:
    """One stage declaration and the plugin it came from."""

    spec: StageSpec
    plugin: str
    explicit: bool  # listed in DOCGRAPH_PLUGINS (or passed to load_plugins): may replace


@dataclass(frozen=True)
class LoadedPlugins:
    """The plugins of one process and the effective settings they imply."""

    manager: pluggy.PluginManager
    settings: Settings
    stages: dict[str, StageSpec]  # every declared stage (after replacements), by name
    origins: dict[str, str]  # stage -> the plugin that declares it
    settings_models: dict[str, type[BaseModel]]  # plugin settings namespace -> model
    unused: tuple[str, ...]  # declared stages the topology leaves out (they never run)

    def specs(self, names: Iterable[str] | None = None) -> list[StageSpec]:
        """The specs of ``names`` (default: every topology stage, in topology order)."""
        chosen = list(Topology(self.settings.topology).stages if names is None else names)
        unknown = [n for n in chosen if n not in self.settings.topology]
        if unknown:
            raise ConfigError(f"unknown stage(s) {unknown}; stages: {', '.join(self.settings.topology)}")
        return [self.stages[n] for n in chosen]


def plugin_manager(settings: Settings, extra: Sequence[object] = ()) -> pluggy.PluginManager:
    """Built-in and third-party plugins (entry-point group ``docgraph``), the
    modules named in ``settings.plugins`` and ``extra`` plugin objects."""
    pm = pluggy.PluginManager("docgraph")
    pm.add_hookspecs(hookspecs)
    pm.load_setuptools_entrypoints("docgraph")
    for module in _explicit_modules(settings):
        if not pm.is_registered(module):
            pm.register(module, name=module.__name__)
    for plugin in extra:
        if not pm.is_registered(plugin):
            pm.register(plugin, name=getattr(plugin, "__name__", None))
    return pm


def _explicit_modules(settings: Settings) -> list[Any]:
    modules = []
    for name in settings.plugins:
        try:
            modules.append(importlib.import_module(name))
        except ImportError as exc:
            raise ConfigError(f"DOCGRAPH_PLUGINS names {name!r}, which cannot be imported: {exc}") from exc
    return modules


def _call_each(hook: Any, kwargs: dict[str, Any]) -> list[tuple[str, object, Any]]:
    """Call every implementation of ``hook`` on its own: (plugin name, plugin, result)."""
    out = []
    for impl in hook.get_hookimpls():  # registration order (pluggy calls them in reverse)
        if impl.hookwrapper or impl.wrapper:  # wrappers wrap a call; each result is asked for here
            continue
        result = impl.function(**{name: kwargs[name] for name in impl.argnames})
        out.append((impl.plugin_name, impl.plugin, result))
    return out


def declarations(
    pm: pluggy.PluginManager, settings: Settings, extra: Sequence[object] = ()
) -> list[Declared]:
    """Every stage declaration, in plugin registration order."""
    explicit = {id(m) for m in (*_explicit_modules(settings), *extra)}
    found = []
    for plugin_name, plugin, specs in _call_each(pm.hook.docgraph_add_stages, {"settings": settings}):
        for spec in specs or ():
            found.append(Declared(spec, plugin_name, id(plugin) in explicit))
    return found


def resolve_stages(declared: Iterable[Declared]) -> tuple[dict[str, StageSpec], dict[str, str]]:
    """One spec per stage name.  Two declarations of a name are a ConfigError,
    except that a single explicit one (DOCGRAPH_PLUGINS) replaces installed ones."""
    by_name: dict[str, list[Declared]] = {}
    for d in declared:
        by_name.setdefault(d.spec.name, []).append(d)
    stages: dict[str, StageSpec] = {}
    origins: dict[str, str] = {}
    for name, ds in by_name.items():
        explicit = [d for d in ds if d.explicit]
        chosen = explicit if explicit else ds
        if len(chosen) > 1:
            where = ", ".join(d.plugin for d in chosen)
            hint = (
                "list only one of them in DOCGRAPH_PLUGINS"
                if explicit
                else "uninstall one, or list the one to use in DOCGRAPH_PLUGINS to replace the other"
            )
            raise ConfigError(f"stage {name!r} is declared by more than one plugin ({where}); {hint}")
        stages[name], origins[name] = chosen[0].spec, chosen[0].plugin
    return stages, origins


def collect_stages(
    pm: pluggy.PluginManager, settings: Settings, extra: Sequence[object] = ()
) -> dict[str, StageSpec]:
    """Every declared stage by name (see :func:`resolve_stages`); a ConfigError
    when ``settings.topology`` names a stage no plugin declares."""
    stages, _ = resolve_stages(declarations(pm, settings, extra))
    _check_declared(settings.topology, stages)
    return stages


def _check_declared(topology: Mapping[str, Any], stages: Mapping[str, StageSpec]) -> None:
    missing = [s for s in topology if s not in stages]
    if missing:
        raise ConfigError(
            f"the topology names stages no plugin provides: {missing} "
            f"(provided: {sorted(stages)}); install or list the plugin in DOCGRAPH_PLUGINS"
        )


def effective_topology(
    settings: Settings, stages: Mapping[str, StageSpec], origins: Mapping[str, str] | None = None
) -> dict[str, list[str]]:
    """``DOCGRAPH_TOPOLOGY`` when set; else the settings' topology plus every placed
    stage not already in it (sorted by name, so every process computes the same)."""
    topology = {stage: list(preds) for stage, preds in settings.topology.items()}
    if settings.topology_is_explicit:
        return topology
    origins = origins or {}
    placed = sorted((s for s in stages.values() if s.placed and s.name not in topology), key=lambda s: s.name)
    for spec in placed:
        topology[spec.name] = list(spec.after or ())
    for spec in placed:
        for succ in spec.before:
            if succ not in topology:
                raise ConfigError(
                    f"stage {spec.name!r} ({origins.get(spec.name, '?')}) asks to run before {succ!r}, "
                    f"which is not a stage of the topology {sorted(topology)}"
                )
            if spec.name not in topology[succ]:
                topology[succ].append(spec.name)
    try:
        Topology(topology)
    except ValueError as exc:
        who = ", ".join(f"{s.name} ({origins.get(s.name, '?')})" for s in placed)
        raise ConfigError(f"placing plugin stages {who} into the default topology failed: {exc}") from None
    return topology


def stage_options(
    settings: Settings, stages: Mapping[str, StageSpec], topology: Iterable[str]
) -> dict[str, StageOptions]:
    """Each topology stage's StageSpec defaults overridden, field by field, by DOCGRAPH_STAGES."""
    merged: dict[str, StageOptions] = {}
    for name in sorted(set(topology)):
        spec = stages.get(name)
        configured = settings.stages.get(name)
        values: dict[str, Any] = {}
        if spec is not None:
            values = {f: getattr(spec, f) for f in OPTION_FIELDS if getattr(spec, f) is not None}
        if configured is not None:
            for f in configured.model_fields_set:
                value = getattr(configured, f)
                base = values.get(f)
                if f == "retry" and isinstance(base, RetryPolicy) and isinstance(value, RetryPolicy):
                    value = base.model_copy(update=value.model_dump(exclude_unset=True))
                values[f] = value
        if not values:
            continue
        try:
            merged[name] = StageOptions.model_validate(
                {
                    k: v.model_dump(exclude_unset=True) if isinstance(v, BaseModel) else v
                    for k, v in values.items()
                }
            )
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"stage {name!r}: invalid StageSpec defaults ({problems})") from None
    return merged


class _PluginSettingsBase(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", env_nested_delimiter="__", extra="ignore"
    )


def settings_models(pm: pluggy.PluginManager) -> dict[str, type[BaseModel]]:
    """Plugin settings models by namespace (``docgraph_settings_model``), checked."""
    models: dict[str, type[BaseModel]] = {}
    owners: dict[str, str] = {}
    for plugin_name, _, result in _call_each(pm.hook.docgraph_settings_model, {}):
        if result is None:
            continue
        try:
            namespace, model = result
        except (TypeError, ValueError):
            raise ConfigError(
                f"plugin {plugin_name}: docgraph_settings_model must return (namespace, model), "
                f"not {result!r}"
            ) from None
        if not isinstance(namespace, str) or not NAMESPACE.match(namespace):
            raise ConfigError(
                f"plugin {plugin_name}: settings namespace {namespace!r} must be a lower-case identifier"
            )
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise ConfigError(
                f"plugin {plugin_name}: settings model for {namespace!r} is not a pydantic model"
            )
        if namespace in Settings.model_fields:
            raise ConfigError(
                f"plugin {plugin_name}: settings namespace {namespace!r} is a docgraph setting; choose another"
            )
        if namespace in models and models[namespace] is not model:
            raise ConfigError(
                f"settings namespace {namespace!r} is declared by {owners[namespace]} and {plugin_name}"
            )
        models[namespace], owners[namespace] = model, plugin_name
    return models


def read_plugin_settings(
    models: Mapping[str, type[BaseModel]], values: Mapping[str, Any] | None = None
) -> dict[str, BaseModel]:
    """Each namespace's model read from ``DOCGRAPH_<NAMESPACE>__<FIELD>`` and ``.env``;
    ``values`` (namespace -> model or dict) win over the environment."""
    if not models:
        return {}
    fields: dict[str, Any] = {ns: (model, Field(default_factory=model)) for ns, model in models.items()}
    reader: Any = create_model("PluginSettings", __base__=_PluginSettingsBase, **fields)
    init: dict[str, Any] = {
        ns: v.model_dump() if isinstance(v, BaseModel) else v
        for ns, v in (values or {}).items()
        if ns in models
    }
    try:
        loaded = reader(**init)
    except ValidationError as exc:
        problems = "; ".join(
            f"{ENV_PREFIX}{'__'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid plugin settings: {problems}") from None
    return {ns: getattr(loaded, ns) for ns in models}


def load_plugins(
    settings: Settings,
    extra: Sequence[object] = (),
    plugin_settings: Mapping[str, Any] | None = None,
) -> LoadedPlugins:
    """The plugin manager, the declared stages and the effective settings
    (topology, stage options, plugin settings).  Raises ConfigError for
    duplicate stages, a topology stage no plugin declares, a placement that
    names an unknown stage or makes a cycle, DOCGRAPH_STAGES naming a stage
    outside the topology, and invalid plugin settings."""
    pm = plugin_manager(settings, extra)
    stages, origins = resolve_stages(declarations(pm, settings, extra))
    topology = effective_topology(settings, stages, origins)
    _check_declared(topology, stages)
    unknown = sorted(set(settings.stages) - set(topology))
    if unknown:
        raise ConfigError(
            f"DOCGRAPH_STAGES configures {unknown}, which are not in the topology {sorted(topology)}"
        )
    models = settings_models(pm)
    # values already resolved (e.g. passed to docgraph.testing) are kept
    known = {ns: v for ns, v in settings._plugin_settings.items() if ns in models}
    values = read_plugin_settings(models, {**known, **(plugin_settings or {})})
    effective = settings.model_copy(
        update={"topology": topology, "stages": stage_options(settings, stages, topology)}
    )
    # what the user configured stays what it was (model_copy marks updated fields as set)
    effective.__pydantic_fields_set__ = set(settings.model_fields_set)
    effective._plugin_settings = values
    unused = tuple(sorted(s for s in stages if s not in topology))
    return LoadedPlugins(pm, effective, stages, origins, models, unused)


def describe_unused(loaded: LoadedPlugins) -> str:
    """One line naming the declared stages that never run, for worker start-up."""
    names = ", ".join(f"{s} ({loaded.origins[s]})" for s in loaded.unused)
    where = "DOCGRAPH_TOPOLOGY" if loaded.settings.topology_is_explicit else "the topology"
    return f"declared stages not in {where}, so they never run: {names}"


__all__ = [
    "Declared",
    "LoadedPlugins",
    "collect_stages",
    "declarations",
    "describe_unused",
    "effective_topology",
    "load_plugins",
    "plugin_manager",
    "read_plugin_settings",
    "resolve_stages",
    "settings_models",
    "stage_options",
]
