"""Format plugins imported on their first document of their type.

pypdf, python-docx and lxml weigh ~20 MiB of RSS and half a second of start-up:
a worker that never extracts (ner, ingest, a third-party stage) must not carry
them, and an HTML-only stream never loads pypdf.  Each :class:`LazyExtractor`
is registered in place of its module (entry points ``extract-pdf`` etc.) and
imports it when a document of one of its content types arrives.
"""

from __future__ import annotations

import importlib
import threading
from types import ModuleType
from typing import Any

from docgraph.plugins.extractors.text import base_type
from docgraph.plugins.hookspecs import hookimpl
from docgraph.plugins.types import ExtractedDocument

PDF = ("application/pdf",)
DOCX = ("application/vnd.openxmlformats-officedocument.wordprocessingml.document",)
HTML = ("text/html", "application/xhtml+xml")
IMAGES = ("image/png", "image/jpeg", "image/tiff")  # read with OCR (images.py)


class LazyExtractor:
    """``docgraph_extract_text`` of ``module``, imported on first use."""

    def __init__(self, module: str, content_types: tuple[str, ...]) -> None:
        self.module = module
        self.content_types = content_types
        self._loaded: ModuleType | None = None
        self._lock = threading.Lock()  # sync stages run in threads

    def __repr__(self) -> str:
        return f"<lazy {self.module}>"

    def load(self) -> ModuleType:
        with self._lock:
            if self._loaded is None:
                self._loaded = importlib.import_module(self.module)
            return self._loaded

    @hookimpl
    def docgraph_extract_text(
        self, data: bytes, content_type: str, settings: Any
    ) -> ExtractedDocument | None:
        if base_type(content_type) not in self.content_types:
            return None
        result: ExtractedDocument | None = self.load().docgraph_extract_text(
            data=data, content_type=content_type, settings=settings
        )
        return result


pdf = LazyExtractor("docgraph.plugins.extractors.pdf", PDF)
docx = LazyExtractor("docgraph.plugins.extractors.docx", DOCX)
html = LazyExtractor("docgraph.plugins.extractors.html", HTML)
images = LazyExtractor("docgraph.plugins.extractors.images", IMAGES)
