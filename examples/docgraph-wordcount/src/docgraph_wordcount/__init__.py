"""docgraph-wordcount: an example docgraph stage plugin (see docs/plugins.md)."""

from docgraph_wordcount.counting import count_words

__all__ = ["count_words"]
