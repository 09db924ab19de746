"""Built-in format extractors: one plugin module per format.

``PLUGINS`` lists the modules to register with the plugin manager::

    from docgraph.plugins.extractors import PLUGINS
    for module in PLUGINS:
        pm.register(module)

* ``sniff``: the content sniffer (``docgraph_sniff_content_type``, runs last);
* ``pdf``, ``docx``, ``html``, ``text``: one ``docgraph_extract_text`` each,
  returning None for content types they do not handle (the first three are
  registered through :mod:`~docgraph.plugins.extractors.formats`, which imports
  them on their first document);
* ``unsupported``: runs last and refuses what no extractor took.

Helpers (not plugins): ``chunking``, ``normalize``, ``limits``, ``errors``.
See docs/extract.md for how to add a format.
"""

from __future__ import annotations

from typing import Any

from docgraph.plugins.extractors import formats, sniff, text, unsupported
from docgraph.plugins.extractors.errors import ExtractionError

PLUGINS: list[Any] = [sniff, formats.pdf, formats.docx, formats.html, text, unsupported]

__all__ = ["PLUGINS", "ExtractionError"]
