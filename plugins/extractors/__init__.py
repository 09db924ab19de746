"""Built-in format extractors: one plugin module per format.

``PLUGINS`` lists the modules to register with the plugin manager::

    from docgraph.plugins.extractors import PLUGINS
    for module in PLUGINS:
        pm.register(module)

* ``sniff``: the content sniffer (``docgraph_sniff_content_type``, runs last);
* ``pdf``, ``docx``, ``html``, ``text``, ``images``: one ``docgraph_extract_text``
  each, returning None for content types they do not handle (``images`` and the
  image-only pages of a PDF use OCR: ``ocr``, ``pdf_ocr``, ``tesseract``);
* ``unsupported``: runs last and refuses what no extractor took.

Helpers (not plugins): ``chunking``, ``normalize``, ``limits``, ``errors``, ``ocr``.
See docs/extract.md for how to add a format.
"""

from __future__ import annotations

from types import ModuleType

from docgraph.plugins.extractors import docx, html, images, pdf, sniff, text, unsupported
from docgraph.plugins.extractors.errors import ExtractionError

PLUGINS: list[ModuleType] = [sniff, pdf, docx, html, text, images, unsupported]

__all__ = ["PLUGINS", "ExtractionError"]
