"""Text normalization shared by every extractor.

The rules (applied in this order), so every format yields comparable text:

1. line breaks: ``\\r\\n``, ``\\r``, ``\\v``, NEL and U+2028 become ``\\n``; form
   feed and U+2029 (paragraph separator) become a paragraph break ``\\n\\n``;
2. control characters (except tab and newline), U+00AD soft hyphen, U+FEFF and
   lone surrogates are dropped; Latin ligatures U+FB00-FB06 (``ﬁ``) are spelled
   out (PDF fonts produce them, and they defeat search and NER);
3. Unicode NFC;
4. every run of horizontal whitespace (spaces, tabs, NBSP...) becomes one space,
   or one tab if it contained a tab (table cells); lines are stripped;
5. a single ``\\n`` (line break) is kept; two or more, with only whitespace
   between, become exactly ``\\n\\n`` (paragraph break); the text is stripped.
"""

from __future__ import annotations

import re
import unicodedata

_LINE_BREAKS = re.compile("\r\n?|[\v\x85\u2028]")
_PARAGRAPH_BREAKS = re.compile("[\f\u2029]")
_DROP = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\xad\ufeff\ud800-\udfff]")
_LIGATURE = re.compile("[\ufb00-\ufb06]")
_LIGATURES = {
    "\ufb00": "ff",
    "\ufb01": "fi",
    "\ufb02": "fl",
    "\ufb03": "ffi",
    "\ufb04": "ffl",
    "\ufb05": "st",
    "\ufb06": "st",
}
_HSPACE = re.compile(r"[^\S\n]+")
_AROUND_NEWLINE = re.compile(r"[ \t]*\n[ \t]*")
_MANY_NEWLINES = re.compile(r"\n{3,}")


def _space(match: re.Match[str]) -> str:
    return "\t" if "\t" in match.group() else " "


def normalize_text(text: str) -> str:
    """Return ``text`` normalized as described in the module docstring."""
    if not text:
        return ""
    text = _LINE_BREAKS.sub("\n", text)
    text = _PARAGRAPH_BREAKS.sub("\n\n", text)
    text = _DROP.sub("", text)
    text = _LIGATURE.sub(lambda m: _LIGATURES[m.group()], text)
    text = unicodedata.normalize("NFC", text)
    text = _HSPACE.sub(_space, text)
    text = _AROUND_NEWLINE.sub("\n", text)
    text = _MANY_NEWLINES.sub("\n\n", text)
    return text.strip()
