"""Resource bounds for extraction, read from :class:`~docgraph.core.settings.Settings`
(``settings.extract``: ``DOCGRAPH_EXTRACT__MAX_PAGES`` …; the older flat names
``DOCGRAPH_MAX_PAGES`` … still work).

Every extractor starts with ``limits = Limits.from_settings(settings)`` and
``limits.check_size(data)``.  ``settings`` may be None (tests, scripts): each
field then takes the default below.  Hostile input must never hang a worker or
exhaust its memory, so each bound here is enforced by the extractors:

==========================  ============  ==========================================
``Limits`` field            default       bounds
==========================  ============  ==========================================
``max_document_bytes``      50 MiB        input size, checked before parsing
``max_pages``               2000          pages of a PDF
``max_decompressed_ratio``  100           decompressed bytes / input bytes (zip
                                          members of a DOCX, PDF content streams)
``max_decompressed_bytes``  512 MiB       absolute cap on the same
``max_text_chars``          20,000,000    characters of extracted text
``extract_timeout``         120 s         wall-clock time of one extraction
``chunk_chars``             1500          target chunk size (see chunking.py)
==========================  ============  ==========================================
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from docgraph.plugins.extractors.errors import (
    DECOMPRESSION_BOMB,
    EMPTY,
    TIMEOUT,
    TOO_LARGE,
    ExtractionError,
)

MiB = 1024 * 1024

DEFAULT_MAX_DOCUMENT_BYTES = 50 * MiB
DEFAULT_MAX_PAGES = 2000
DEFAULT_MAX_DECOMPRESSED_RATIO = 100.0
DEFAULT_MAX_DECOMPRESSED_BYTES = 512 * MiB
DEFAULT_MAX_TEXT_CHARS = 20_000_000
DEFAULT_EXTRACT_TIMEOUT = 120.0
DEFAULT_CHUNK_CHARS = 1500

# Below this many decompressed bytes a document is never called a bomb, however
# high its ratio: a 10 KiB file that inflates to 5 MiB is harmless.
DECOMPRESSED_FLOOR = 16 * MiB


def human_bytes(n: float) -> str:
    """``52428800`` -> ``'50 MiB'``; for messages people read."""
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" or n == int(n) else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


# Limits field -> field of Settings.extract (DOCGRAPH_EXTRACT__<NAME>)
EXTRACT_FIELDS = {
    "max_pages": "max_pages",
    "max_decompressed_ratio": "max_decompressed_ratio",
    "max_decompressed_bytes": "max_decompressed_bytes",
    "max_text_chars": "max_text_chars",
    "extract_timeout": "timeout",
}


def _get(settings: Any, name: str, default: Any) -> Any:
    """``settings.extract.<field>`` for docgraph's Settings; a plain attribute for
    the simple objects scripts and tests pass."""
    if settings is None:
        return default
    group = getattr(settings, "extract", None)
    if group is not None and name in EXTRACT_FIELDS:
        value = getattr(group, EXTRACT_FIELDS[name], None)
    else:
        value = getattr(settings, name, None)
    return default if value is None else value


def extract_setting(settings: Any, name: str, default: Any) -> Any:
    """``settings.extract.<name>`` (DOCGRAPH_EXTRACT__<NAME>), else a flat ``settings.<name>``
    (the simple objects tests pass), else ``default``."""
    if settings is None:
        return default
    group = getattr(settings, "extract", None)
    value = getattr(group, name, None) if group is not None else None
    if value is None:
        value = getattr(settings, name, None)
    return default if value is None else value


@dataclass(frozen=True)
class Limits:
    """The bounds one extraction runs under."""

    max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES
    max_pages: int = DEFAULT_MAX_PAGES
    max_decompressed_ratio: float = DEFAULT_MAX_DECOMPRESSED_RATIO
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS
    extract_timeout: float = DEFAULT_EXTRACT_TIMEOUT
    chunk_chars: int = DEFAULT_CHUNK_CHARS

    @classmethod
    def from_settings(cls, settings: Any) -> Limits:
        """Read each bound from ``settings`` (None allowed), falling back to the default."""
        return cls(
            max_document_bytes=int(_get(settings, "max_document_bytes", DEFAULT_MAX_DOCUMENT_BYTES)),
            max_pages=int(_get(settings, "max_pages", DEFAULT_MAX_PAGES)),
            max_decompressed_ratio=float(
                _get(settings, "max_decompressed_ratio", DEFAULT_MAX_DECOMPRESSED_RATIO)
            ),
            max_decompressed_bytes=int(
                _get(settings, "max_decompressed_bytes", DEFAULT_MAX_DECOMPRESSED_BYTES)
            ),
            max_text_chars=int(_get(settings, "max_text_chars", DEFAULT_MAX_TEXT_CHARS)),
            extract_timeout=float(_get(settings, "extract_timeout", DEFAULT_EXTRACT_TIMEOUT)),
            chunk_chars=max(1, int(_get(settings, "chunk_chars", DEFAULT_CHUNK_CHARS))),
        )

    def check_size(self, data: bytes) -> None:
        """Reject empty and oversized input before any parser sees it."""
        if not data:
            raise ExtractionError(
                EMPTY,
                "The document is empty (0 bytes): the upload or download probably failed. "
                "Submit the file again with its content.",
            )
        if len(data) > self.max_document_bytes:
            raise ExtractionError(
                TOO_LARGE,
                f"The document is {human_bytes(len(data))}, over the "
                f"{human_bytes(self.max_document_bytes)} limit (DOCGRAPH_MAX_DOCUMENT_BYTES). "
                "Split it into smaller files, or raise the limit.",
            )

    def decompressed_budget(self, compressed_size: int) -> int:
        """How many bytes a document of ``compressed_size`` may inflate to in total."""
        by_ratio = int(compressed_size * self.max_decompressed_ratio)
        return min(self.max_decompressed_bytes, max(by_ratio, DECOMPRESSED_FLOOR))

    def bomb(self, what: str, size: int, compressed_size: int) -> ExtractionError:
        """The error for input that decompresses to more than its budget."""
        return ExtractionError(
            DECOMPRESSION_BOMB,
            f"The {what} would decompress to {human_bytes(size)} from "
            f"{human_bytes(compressed_size)}, over the "
            f"{human_bytes(self.decompressed_budget(compressed_size))} allowed "
            f"(DOCGRAPH_EXTRACT__MAX_DECOMPRESSED_RATIO={self.max_decompressed_ratio:g}, "
            f"DOCGRAPH_EXTRACT__MAX_DECOMPRESSED_BYTES={self.max_decompressed_bytes}); "
            "it looks like a decompression bomb and was not read. If the file is genuine, "
            "split it or raise those limits.",
        )

    def deadline(self) -> Deadline:
        return Deadline(self.extract_timeout)


class Deadline:
    """Wall-clock budget of one extraction; extractors call :meth:`check` in their loops."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expires = time.monotonic() + seconds

    def expired(self) -> bool:
        return time.monotonic() > self.expires

    def check(self, where: str = "") -> None:
        if self.expired():
            raise self.error(where)

    def error(self, where: str = "") -> ExtractionError:
        at = f" (stopped at {where})" if where else ""
        return ExtractionError(
            TIMEOUT,
            f"Extraction took longer than {self.seconds:g} s{at} (DOCGRAPH_EXTRACT__TIMEOUT). "
            "The document is very large or malformed; split it into smaller files, "
            "or raise the limit.",
        )
