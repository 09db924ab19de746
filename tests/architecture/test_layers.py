"""The layer rules of DESIGN.md, checked on the source (imports under
``if TYPE_CHECKING:`` are annotations, not dependencies, and do not count).

* the contract (core/*.py) imports no core subpackage, no stage and no plugin;
* ``runtime`` never imports ``api`` or ``cli``; ``api`` and ``cli`` never import each other;
* ``store`` and ``telemetry`` import only the contract (they are infrastructure under the runtime);
* stages/ and plugins/ import only the contract and ``core.store`` (and each other);
* ``testing`` (``docgraph.testing``, shipped for plugin authors' tests) is an edge: it may
  import the runtime and plugins, and nothing but tests imports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"core": "docgraph.core", "stages": "docgraph.stages", "plugins": "docgraph.plugins"}
CORE_SUBPACKAGES = ("runtime", "store", "telemetry", "api", "cli")


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    if rel.parts[:2] == ("core", "testing"):  # published as docgraph.testing
        return ".".join(["docgraph.testing", *rel.parts[2:]]).removesuffix(".__init__")
    parts = [PACKAGES[rel.parts[0]], *rel.parts[1:]]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(path: Path) -> set[str]:
    """Every docgraph module ``path`` imports when it runs (function-level imports included)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return {name for name in found if name.startswith("docgraph.")}


def layer(module: str) -> str:
    parts = module.split(".")
    if parts[1] in ("stages", "plugins", "testing"):
        return parts[1]
    if len(parts) > 2 and parts[2] in CORE_SUBPACKAGES:
        return parts[2]
    return "contract"


FORBIDDEN = {
    "contract": {"runtime", "store", "telemetry", "api", "cli", "stages", "plugins", "testing"},
    "store": {"runtime", "telemetry", "api", "cli", "stages", "plugins", "testing"},
    "telemetry": {"runtime", "store", "api", "cli", "stages", "plugins", "testing"},
    "runtime": {"api", "cli", "stages", "testing"},
    "api": {"cli", "stages", "testing"},
    "cli": {"api", "testing"},
    "stages": {"runtime", "telemetry", "api", "cli", "testing"},
    "plugins": {"runtime", "telemetry", "api", "cli", "stages", "testing"},
    "testing": {"api", "cli", "stages"},
}
# the one sanctioned crossing: `docgraph serve` builds the app it serves (inside the command)
ALLOWED = {("docgraph.core.cli.serve", "docgraph.core.api")}


def sources() -> list[Path]:
    return sorted(p for d in PACKAGES for p in (ROOT / d).rglob("*.py"))


def violations() -> list[str]:
    found = []
    for path in sources():
        mod = module_name(path)
        for imported in sorted(runtime_imports(path)):
            target = layer(imported)
            if target in FORBIDDEN[layer(mod)] and not any(
                mod == a and imported.startswith(b) for a, b in ALLOWED
            ):
                found.append(f"{path.relative_to(ROOT)} ({layer(mod)}) imports {imported} ({target})")
    return found


def test_layers_hold() -> None:
    assert violations() == []


@pytest.mark.parametrize(
    ("source", "imported"),
    [
        ("from docgraph.core.runtime.jobs import JobStore\n", "docgraph.core.runtime.jobs"),
        ("import docgraph.core.cli.app\n", "docgraph.core.cli.app"),
        ("def f():\n    from docgraph.core.api import create_app\n", "docgraph.core.api"),
    ],
)
def test_the_check_sees_module_and_function_level_imports(tmp_path, source, imported) -> None:
    path = tmp_path / "mod.py"
    path.write_text(source)
    assert imported in runtime_imports(path)
    assert layer(imported) in FORBIDDEN["contract"]


def test_testing_is_an_edge_nothing_else_imports(tmp_path) -> None:
    assert module_name(ROOT / "core" / "testing" / "__init__.py") == "docgraph.testing"
    assert layer("docgraph.testing") == "testing"
    for role in ("runtime", "api", "cli", "stages", "plugins", "contract"):
        assert "testing" in FORBIDDEN[role]
    assert "runtime" not in FORBIDDEN["testing"]


def test_type_checking_imports_do_not_count(tmp_path) -> None:
    path = tmp_path / "mod.py"
    path.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from docgraph.core.store import X\n"
    )
    assert runtime_imports(path) == set()
