"""HTML and XHTML: parse with lxml, keep the readable text, drop the rest.

* The encoding comes from a BOM, else a ``<meta charset>`` / ``http-equiv`` in
  the first 4 KiB (when it decodes the bytes), else detection as for text.
* Dropped with their content: ``script``, ``style``, ``nav``, ``noscript``,
  ``template``, ``head`` (its ``<title>`` goes to ``metadata["title"]``),
  ``svg``, ``iframe``, ``object``, ``embed``, ``canvas``, comments, and any
  element with the ``hidden`` attribute.
* Block elements (``p``, ``div``, headings, ``section``...) become paragraphs,
  ``li``/``tr``/``dt``/``dd`` lines, ``br`` a line break, table cells are
  separated by a tab.  Whitespace is then normalized like every format.

lxml (libxml2) parses in linear time, does not fetch anything from the network
and limits nesting depth and text node size (``huge_tree`` stays off); the
text walk is iterative, so deep nesting cannot overflow the stack.
"""

from __future__ import annotations

import re
from typing import Any

from lxml import etree

from docgraph.plugins.extractors import formats
from docgraph.plugins.extractors.chunking import build_document
from docgraph.plugins.extractors.errors import CORRUPT, ExtractionError
from docgraph.plugins.extractors.limits import Limits
from docgraph.plugins.extractors.text import base_type, bom_encoding, charset_param, decode_text
from docgraph.plugins.hookspecs import hookimpl
from docgraph.plugins.types import ExtractedDocument

CONTENT_TYPES = formats.HTML

SKIP = frozenset(
    {
        "script",
        "style",
        "nav",
        "noscript",
        "template",
        "head",
        "svg",
        "iframe",
        "object",
        "embed",
        "canvas",
    }
)
PARAGRAPH = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "caption",
        "center",
        "details",
        "dialog",
        "dir",
        "div",
        "dl",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hgroup",
        "hr",
        "html",
        "legend",
        "main",
        "menu",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "ul",
    }
)
LINE = frozenset({"li", "tr", "dt", "dd", "option", "thead", "tbody", "tfoot"})
CELL = frozenset({"td", "th"})

_META_CHARSET = re.compile(rb"""<meta[^>]+?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{1,40})""", re.IGNORECASE)


_SOURCE_WHITESPACE = re.compile(r"[ \t\n\r\f]+")


def _declared_charset(data: bytes, content_type: str) -> str | None:
    declared = charset_param(content_type)
    if declared:
        return declared
    match = _META_CHARSET.search(data[:4096])
    if match is None:
        return None
    name = match.group(1).decode("ascii").lower()
    # WHATWG: a <meta> can't declare UTF-16 (the bytes it sits in are ASCII)
    return None if name.startswith(("utf-16", "utf16", "utf-32")) else name


def _local_name(tag: Any) -> str | None:
    if not isinstance(tag, str):
        return None  # comment, processing instruction, entity
    return tag.rsplit("}", 1)[-1].lower()


_BREAK_RANK = {"": 0, "\t": 1, "\n": 2, "\n\n": 3}


def html_to_text(root: Any) -> str:
    """The readable text of a parsed HTML tree (before normalization).

    Source line breaks are spaces, as a browser renders them, except in ``<pre>``.
    Breaks between blocks are kept pending until the next visible text, so
    whitespace between tags never adds blank lines.
    """
    out: list[str] = []
    pending = ""
    pre = 0

    def brk(kind: str) -> None:
        nonlocal pending
        if _BREAK_RANK[kind] > _BREAK_RANK[pending]:
            pending = kind

    def add(text: str) -> None:
        nonlocal pending
        if not pre:
            text = _SOURCE_WHITESPACE.sub(" ", text)
        if pending:
            if not text.strip():
                return
            if out:
                out.append(pending)
            pending = ""
        out.append(text)

    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        el, closing = stack.pop()
        name = _local_name(el.tag)
        if closing:
            if name == "pre":
                pre -= 1
            if name in PARAGRAPH:
                brk("\n\n")
            elif name in LINE:
                brk("\n")
            if el.tail:
                add(el.tail)
            continue
        if name is None or name in SKIP or el.get("hidden") is not None:
            if el.tail:
                add(el.tail)
            continue
        if name == "br":
            pending = "\n\n" if _BREAK_RANK[pending] >= _BREAK_RANK["\n"] else "\n"
        elif name in PARAGRAPH:
            brk("\n\n")
        elif name in LINE:
            brk("\n")
        elif name in CELL:
            brk("\t")
        if name == "pre":
            pre += 1
        if el.text:
            add(el.text)
        stack.append((el, True))
        stack.extend((child, False) for child in reversed(el))
    return "".join(out)


def _title(root: Any) -> str | None:
    for el in root.iter("title", "{http://www.w3.org/1999/xhtml}title"):
        text = " ".join("".join(el.itertext()).split())
        if text:
            return text[:500]
    return None


def extract_html(data: bytes, content_type: str, limits: Limits) -> ExtractedDocument:
    limits.check_size(data)
    bom = bom_encoding(data)
    text, encoding = decode_text(data, None if bom else _declared_charset(data, content_type))
    parser = etree.HTMLParser(
        encoding="utf-8",
        recover=True,
        no_network=True,
        remove_comments=True,
        remove_pis=True,
        huge_tree=False,
        default_doctype=False,
    )
    try:
        root = etree.fromstring(text.encode("utf-8", "replace"), parser)
    except (etree.LxmlError, ValueError) as err:
        raise ExtractionError(
            CORRUPT,
            f"The HTML could not be parsed ({err}). Check the file, or save it again "
            "from a browser or editor.",
        ) from err
    if root is None:
        segments: list[str] = []
        title = None
    else:
        segments = [html_to_text(root)]
        title = _title(root)
    metadata = {"encoding": encoding}
    if title:
        metadata["title"] = title
    return build_document(
        segments,
        base_type(content_type),
        limits,
        metadata=metadata,
        empty_message="The HTML page has no visible text (only markup, scripts or styles). "
        "If its content is rendered by JavaScript, save the rendered page "
        "(or print it to PDF) and submit that.",
    )


@hookimpl
def docgraph_extract_text(data: bytes, content_type: str, settings: Any) -> ExtractedDocument | None:
    if base_type(content_type) not in CONTENT_TYPES:
        return None
    return extract_html(data, content_type, Limits.from_settings(settings))
