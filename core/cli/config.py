"""``docgraph config show``: the effective settings (core and plugins), secrets
masked, each with the variable that sets it and where its value came from."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin
from urllib.parse import urlsplit, urlunsplit

import typer
from pydantic import BaseModel
from rich.table import Table

from docgraph.core.cli.common import console, load_plugins
from docgraph.core.settings import ENV_PREFIX, LEGACY_NAMES, Settings

config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)

SECRET_NAME = re.compile(r"password|secret|token|(^|_)keys?$", re.IGNORECASE)
MASK = "********"


def is_secret(name: str, model: type[BaseModel]) -> bool:
    """Declared ``repr=False``, or named like a credential."""
    info = model.model_fields.get(name)
    return (info is not None and info.repr is False) or bool(SECRET_NAME.search(name))


def _mask_url(value: str) -> str:
    """``redis://user:pw@host`` -> ``redis://user:********@host``."""
    try:
        parts = urlsplit(value)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", f":{MASK}@", 1)
            return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        pass
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if get_origin(annotation) is dict:
        return None
    options = [annotation, *get_args(annotation)]
    return next((a for a in options if isinstance(a, type) and issubclass(a, BaseModel)), None)


def _source(
    env_name: str, path: tuple[str, ...], environ: Mapping[str, str], dotenv: Mapping[str, Any]
) -> str:
    upper = {k.upper(): k for k in environ}
    if env_name in upper:
        return f"env {upper[env_name]}"
    nested = sorted(k for k in upper if k.startswith(f"{env_name}__"))
    if nested:
        return "env " + ", ".join(upper[k] for k in nested)
    for legacy, target in LEGACY_NAMES.items():
        if target == path[-2:] and legacy in environ:
            return f"legacy name {legacy}"
    dot = {k.upper() for k in dotenv}
    if env_name in dot or any(k.startswith(f"{env_name}__") for k in dot):
        return ".env"
    return "default"


def settings_rows(
    model: BaseModel,
    prefix: str,
    namespace: str,
    environ: Mapping[str, str],
    dotenv: Mapping[str, Any],
    path: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """One row per leaf setting: name, variable, value (secrets masked), source."""
    rows: list[dict[str, Any]] = []
    cls = type(model)
    for name, info in cls.model_fields.items():
        value = getattr(model, name)
        env_name = f"{prefix}{name.upper()}"
        nested = _nested_model(info.annotation)
        if isinstance(value, BaseModel) and nested is not None:
            rows += settings_rows(value, f"{env_name}__", namespace, environ, dotenv, (*path, name))
            continue
        shown = _plain(value)
        if is_secret(name, cls):
            shown = MASK if value else ""
        elif isinstance(shown, str):
            shown = _mask_url(shown)
        rows.append(
            {
                "namespace": namespace,
                "name": ".".join((*path, name)),
                "variable": env_name,
                "value": shown,
                "source": _source(env_name, (*path, name), environ, dotenv),
            }
        )
    return rows


def _dotenv() -> dict[str, Any]:
    from dotenv import dotenv_values

    path = Settings.model_config.get("env_file") or ".env"
    return dict(dotenv_values(str(path))) if Path(str(path)).is_file() else {}


@config_app.command("show")
def show(as_json: Annotated[bool, typer.Option("--json", help="machine-readable")] = False) -> None:
    """Print the effective settings — core and every plugin's namespace — with secrets
    masked and where each value came from (default, env DOCGRAPH_…, .env, legacy name,
    plugin defaults).

    Example: [bold]docgraph config show --json[/bold]
    """
    loaded = load_plugins()
    settings = loaded.settings
    environ, dotenv = os.environ, _dotenv()
    rows = settings_rows(settings, ENV_PREFIX, "core", environ, dotenv)
    for row in rows:  # the two values plugins change
        if row["name"] == "topology" and row["source"] == "default":
            added = sorted(
                set(settings.topology)
                - set(Settings.model_fields["topology"].get_default(call_default_factory=True))
            )
            if added:
                row["source"] = f"default + plugin stages ({', '.join(added)})"
        if row["name"] == "stages" and row["source"] == "default" and settings.stages:
            row["source"] = "plugin stage defaults"
    for namespace in sorted(loaded.settings_models):
        rows += settings_rows(
            settings.plugin(namespace), f"{ENV_PREFIX}{namespace.upper()}__", namespace, environ, dotenv
        )
    stages = [
        {"stage": name, "plugin": loaded.origins[name], "runs": name in settings.topology}
        for name in sorted(loaded.stages)
    ]
    if as_json:
        console.print_json(json.dumps({"settings": rows, "stages": stages}, default=str))
        return
    table = Table(title="docgraph settings")
    for col in ("setting", "value", "source"):
        table.add_column(col, overflow="fold")
    for row in rows:
        name = row["name"] if row["namespace"] == "core" else f"{row['namespace']}.{row['name']}"
        table.add_row(name, json.dumps(row["value"], default=str), row["source"])
    console.print(table)
    st = Table(title="stages")
    for col in ("stage", "plugin", "runs"):
        st.add_column(col)
    for s in stages:
        st.add_row(s["stage"], s["plugin"], "yes" if s["runs"] else "no (not in the topology)")
    console.print(st)
