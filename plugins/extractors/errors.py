"""The one error type extractors raise for bad input, with a machine-readable code.

:class:`ExtractionError` is a :class:`~docgraph.core.errors.PermanentError`, so the
runtime dead-letters the job at once with the message as the reason.  The
``code`` lets callers (API, dashboards, tests) group failures without parsing
the text; the message is for people: it says what is wrong and what to do.
"""

from __future__ import annotations

from typing import Final

from docgraph.core.errors import PermanentError

EMPTY: Final = "empty"
TOO_LARGE: Final = "too_large"
UNSUPPORTED_TYPE: Final = "unsupported_type"
CORRUPT: Final = "corrupt"
TRUNCATED: Final = "truncated"
ENCRYPTED: Final = "encrypted"
NEEDS_OCR: Final = "needs_ocr"
NO_TEXT: Final = "no_text"
NOT_TEXT: Final = "not_text"
DECOMPRESSION_BOMB: Final = "decompression_bomb"
TOO_MANY_PAGES: Final = "too_many_pages"
TOO_MUCH_TEXT: Final = "too_much_text"
TIMEOUT: Final = "timeout"

CODES: Final = frozenset(
    {
        EMPTY,
        TOO_LARGE,
        UNSUPPORTED_TYPE,
        CORRUPT,
        TRUNCATED,
        ENCRYPTED,
        NEEDS_OCR,
        NO_TEXT,
        NOT_TEXT,
        DECOMPRESSION_BOMB,
        TOO_MANY_PAGES,
        TOO_MUCH_TEXT,
        TIMEOUT,
    }
)


class ExtractionError(PermanentError):
    """A document that no retry can extract; ``str(err)`` is the user-facing reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    def __reduce__(self) -> tuple[type[ExtractionError], tuple[str, str]]:
        # keep the code when the error crosses a process boundary (pickling)
        return (type(self), (self.code, str(self)))
