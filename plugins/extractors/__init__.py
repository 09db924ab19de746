"""Built-in format extractors: one plugin module per format.

``PLUGINS`` lists the modules to register with the plugin manager::

    from docgraph.plugins.extractors import PLUGINS
    for module in PLUGINS:
        pm.register(module)

* ``sniff``: the content sniffer (``docgraph_sniff_content_type``, runs last);
* ``pdf``, ``docx``, ``html``, ``text``, ``images``: one ``docgraph_extract_text``
  each, returning None for content types they do not handle (``pdf``, ``docx``,
  ``html`` and ``images`` are registered through
  :mod:`~docgraph.plugins.extractors.formats`, which imports them on their first
  document; ``images`` and the image-only pages of a PDF use OCR: ``ocr``,
  ``pdf_ocr``, ``tesseract``);
* ``unsupported``: runs last and refuses what no extractor took.

Helpers (not plugins): ``chunking``, ``normalize``, ``limits``, ``errors``, ``ocr``.
See docs/extract.md for how to add a format.
"""

from __future__ import annotations

from typing import Any

from docgraph.plugins.extractors import formats, sniff, text, unsupported
from docgraph.plugins.extractors.errors import ExtractionError

PLUGINS: list[Any] = [sniff, formats.pdf, formats.docx, formats.html, text, formats.images, unsupported]

__all__ = ["PLUGINS", "ExtractionError"]
