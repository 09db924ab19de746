"""The computation, kept free of docgraph so it is easy to test and reuse."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

WORD = re.compile(r"[^\W\d_][\w-]*", re.UNICODE)


def count_words(text: str, min_length: int, stopwords: Iterable[str] = ()) -> Counter[str]:
    """Lower-cased words of at least ``min_length`` letters, stopwords left out."""
    stop = {w.lower() for w in stopwords}
    return Counter(
        w for w in (m.group().lower() for m in WORD.finditer(text)) if len(w) >= min_length and w not in stop
    )
