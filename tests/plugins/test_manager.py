"""The effective configuration load_plugins computes from settings + plugins:
duplicate stages, placement into the default topology, stage defaults, plugin settings."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from docgraph.core.errors import ConfigError
from docgraph.core.settings import RetryPolicy, Settings, unknown_variables
from docgraph.core.stage import StageSpec
from docgraph.plugins.hookspecs import hookimpl
from docgraph.plugins.manager import declarations, load_plugins, plugin_manager, resolve_stages
from tests.plugins import demo_plugin


def _noop(ctx: Any) -> None:
    return None


class Declares:
    """A plugin object declaring the given stages (and optionally a settings model)."""

    def __init__(self, *specs: StageSpec, settings_model: tuple[str, type[BaseModel]] | None = None) -> None:
        self.specs = specs
        self.model = settings_model

    @hookimpl
    def docgraph_add_stages(self, settings: Settings) -> list[StageSpec]:
        return list(self.specs)

    @hookimpl
    def docgraph_settings_model(self) -> tuple[str, type[BaseModel]] | None:
        return self.model


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("DOCGRAPH_") and not name.startswith("DOCGRAPH_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir("/")  # no .env


def test_two_installed_plugins_declaring_one_stage_is_a_config_error() -> None:
    settings = Settings()
    pm = plugin_manager(settings)
    pm.register(Declares(StageSpec("ner", _noop)), name="better-ner")  # installed, not listed
    with pytest.raises(
        ConfigError, match=r"stage 'ner' is declared by more than one plugin \(builtin-stages, better-ner\)"
    ):
        resolve_stages(declarations(pm, settings))


def test_a_listed_plugin_replaces_an_installed_stage() -> None:
    loaded = load_plugins(Settings(plugins=["tests.stageplugin"]))
    assert {loaded.origins[s] for s in ("extract", "classify", "ner", "ingest")} == {"tests.stageplugin"}
    replacement = Declares(StageSpec("ner", _noop))
    assert load_plugins(Settings(), extra=[replacement]).stages["ner"] is replacement.specs[0]


def test_two_listed_plugins_declaring_one_stage_is_a_config_error() -> None:
    a, b = Declares(StageSpec("x", _noop, after=())), Declares(StageSpec("x", _noop, after=()))
    with pytest.raises(ConfigError, match="list only one of them in DOCGRAPH_PLUGINS"):
        load_plugins(Settings(), extra=[a, b])


def test_a_topology_stage_nobody_declares_is_an_error_an_unused_one_is_reported() -> None:
    with pytest.raises(ConfigError, match=r"no plugin provides: \['b'\]"):
        load_plugins(Settings(topology={"extract": [], "b": ["extract"]}))
    loaded = load_plugins(Settings(topology={"extract": [], "ingest": ["extract"]}))
    assert loaded.unused == ("classify", "ner")


def test_a_placed_stage_is_inserted_into_the_default_topology_only() -> None:
    loaded = load_plugins(Settings(), extra=[demo_plugin])
    topo = loaded.settings.topology
    assert topo["shout"] == ["extract"]
    assert topo["ingest"] == ["classify", "ner", "shout"]
    assert not loaded.settings.topology_is_explicit
    names = [s.name for s in loaded.specs()]
    assert names[0] == "extract" and names[-1] == "ingest" and len(names) == 5
    # an explicit topology wins: the placement is ignored and the stage does not run
    explicit = load_plugins(Settings(topology={"extract": [], "ingest": ["extract"]}), extra=[demo_plugin])
    assert "shout" not in explicit.settings.topology and "shout" in explicit.unused
    assert "shout" not in explicit.settings.stages  # its defaults apply only where it runs
    assert (
        load_plugins(explicit.settings, extra=[demo_plugin]).settings.topology == explicit.settings.topology
    )
    # computing again from the result changes nothing
    again = load_plugins(loaded.settings, extra=[demo_plugin])
    assert again.settings.topology == topo and again.settings.stages == loaded.settings.stages


def test_placements_naming_unknown_stages_or_making_cycles_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"'late' .* asks to run before 'nope'"):
        load_plugins(
            Settings(), extra=[Declares(StageSpec("late", _noop, after=("extract",), before=("nope",)))]
        )
    with pytest.raises(ConfigError, match="waits for"):
        load_plugins(Settings(), extra=[Declares(StageSpec("late", _noop, after=("missing",)))])
    with pytest.raises(ConfigError, match="cycle"):
        load_plugins(
            Settings(), extra=[Declares(StageSpec("loop", _noop, after=("ingest",), before=("extract",)))]
        )


def test_stage_defaults_are_overridden_field_by_field(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_plugins(Settings(), extra=[demo_plugin]).settings
    assert s.concurrency_for("shout") == 3
    assert (s.retry_for("shout").attempts, s.retry_for("shout").backoff) == (4, 0.01)
    assert s.visibility_timeout_for("shout") == s.visibility_timeout  # no default: the global one
    monkeypatch.setenv("DOCGRAPH_STAGES__shout__RETRY__ATTEMPTS", "9")
    monkeypatch.setenv("DOCGRAPH_STAGES__shout__VISIBILITY_TIMEOUT", "300")
    s = load_plugins(Settings(), extra=[demo_plugin]).settings
    assert (s.retry_for("shout").attempts, s.retry_for("shout").backoff) == (9, 0.01)
    assert s.visibility_timeout_for("shout") == 300 and s.concurrency_for("shout") == 3
    assert s.retry_for("ner") == RetryPolicy()  # other stages untouched


def test_a_placement_given_as_a_string_and_bad_defaults() -> None:
    spec = StageSpec("late", _noop, after="extract", before="ingest")  # type: ignore[arg-type]
    assert (spec.after, spec.before) == (("extract",), ("ingest",))
    assert load_plugins(Settings(), extra=[Declares(spec)]).settings.topology["late"] == ["extract"]
    with pytest.raises(ConfigError, match=r"stage 'late': invalid StageSpec defaults \(concurrency"):
        load_plugins(Settings(), extra=[Declares(StageSpec("late", _noop, after=(), concurrency=0))])


def test_stage_options_for_a_stage_outside_the_topology_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCGRAPH_STAGES__shuot__CONCURRENCY", "2")
    settings = Settings()  # a plugin may still add the stage: checked when plugins are loaded
    with pytest.raises(ConfigError, match=r"DOCGRAPH_STAGES configures \['shuot'\]"):
        load_plugins(settings, extra=[demo_plugin])


def test_plugin_settings_are_typed_and_read_from_their_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCGRAPH_DEMO__GREETING", "salut")
    monkeypatch.setenv("DOCGRAPH_DEMO__THRESHOLD", "7")
    loaded = load_plugins(Settings(), extra=[demo_plugin])
    demo = loaded.settings.plugin("demo", demo_plugin.DemoSettings)
    assert (demo.greeting, demo.threshold) == ("salut", 7)
    assert loaded.settings_models == {"demo": demo_plugin.DemoSettings}
    with pytest.raises(ConfigError, match="no plugin settings 'nope'"):
        loaded.settings.plugin("nope")
    # passed values win over the environment, and survive a second resolution
    loaded = load_plugins(Settings(), extra=[demo_plugin], plugin_settings={"demo": {"threshold": 1}})
    assert load_plugins(loaded.settings, extra=[demo_plugin]).settings.plugin("demo").threshold == 1
    monkeypatch.setenv("DOCGRAPH_DEMO__THRESHOLD", "-1")
    with pytest.raises(
        ConfigError, match="DOCGRAPH_DEMO__THRESHOLD: Input should be greater than or equal to 0"
    ):
        load_plugins(Settings(), extra=[demo_plugin])


def test_plugin_namespaces_must_not_clash() -> None:
    class Other(BaseModel):
        x: int = 1

    with pytest.raises(ConfigError, match="'retry' is a docgraph setting"):
        load_plugins(Settings(), extra=[Declares(settings_model=("retry", Other))])
    with pytest.raises(ConfigError, match="'demo' is declared by"):
        load_plugins(Settings(), extra=[demo_plugin, Declares(settings_model=("demo", Other))])
    with pytest.raises(ConfigError, match="lower-case identifier"):
        load_plugins(Settings(), extra=[Declares(settings_model=("Bad-Name", Other))])


def test_plugin_variables_count_as_known() -> None:
    env = {"DOCGRAPH_DEMO__GREETING": "x", "DOCGRAPH_DEMO__GRETING": "y"}
    assert len(unknown_variables(env)) == 2
    messages = unknown_variables(env, plugins={"demo": demo_plugin.DemoSettings})
    assert messages == [
        "DOCGRAPH_DEMO__GRETING is not a docgraph setting and is ignored; did you mean DOCGRAPH_DEMO__GREETING?"
    ]
