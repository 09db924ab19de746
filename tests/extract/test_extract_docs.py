"""docs/extract.md stays true: its example plugin works, its corpus table is current."""

from __future__ import annotations

import re
import types
from pathlib import Path

import pluggy
import pytest

from docgraph.plugins import hookspecs
from docgraph.plugins.extractors import PLUGINS, errors
from docgraph.plugins.extractors.errors import ExtractionError
from docgraph.plugins.types import ExtractedDocument

DOC = Path(__file__).resolve().parents[2] / "docs" / "extract.md"


def _example_module() -> types.ModuleType:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(r"<!-- example-plugin.*?-->\s*```python\n(.*?)```", text, re.S)
    assert match, "the example plugin block is missing from docs/extract.md"
    module = types.ModuleType("csv_extractor_example")
    exec(compile(match.group(1), str(DOC), "exec"), module.__dict__)
    return module


def _pm_with(module: types.ModuleType) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("docgraph")
    pm.add_hookspecs(hookspecs)
    for plugin in PLUGINS:
        pm.register(plugin)
    pm.register(module)
    pm.check_pending()
    return pm


def test_example_plugin_from_the_docs() -> None:
    pm = _pm_with(_example_module())
    data = "name,ip,port\nweb1,10.0.0.1,443\ndb, 10.0.0.2 ,5432\n".encode("utf-16")
    content_type = pm.hook.docgraph_sniff_content_type(head=data, name="hosts.csv")
    assert content_type == "text/csv"
    doc = pm.hook.docgraph_extract_text(data=data, content_type=content_type, settings=None)
    assert isinstance(doc, ExtractedDocument)
    assert doc.text == "name\tip\tport\nweb1\t10.0.0.1\t443\ndb\t10.0.0.2\t5432"
    assert doc.metadata["rows"] == "3"
    # not CSV: the built-ins still answer
    assert pm.hook.docgraph_sniff_content_type(head=b"%PDF-1.4", name="x.csv") == "application/pdf"
    assert pm.hook.docgraph_sniff_content_type(head=b"Hello, world", name="a.txt") == "text/plain"
    html = pm.hook.docgraph_extract_text(data=b"<p>hi</p>", content_type="text/html", settings=None)
    assert html.text == "hi"
    with pytest.raises(ExtractionError) as info:
        pm.hook.docgraph_extract_text(data=b"", content_type="text/csv", settings=None)
    assert info.value.code == errors.EMPTY


def test_corpus_table_is_current() -> None:
    from . import test_extract_corpus as corpus

    table = corpus.corpus_table()
    assert table in DOC.read_text(encoding="utf-8"), (
        "docs/extract.md's corpus table is out of date: regenerate it with "
        "`python -m tests.extract.test_extract_corpus`"
    )
