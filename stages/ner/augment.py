"""Mention-replacement data augmentation for NER training.

Malware, organisations and products in a held-out report are mostly names the
training set never saw (``Riltok``, ``EventBot``...).  A model trained on the
raw data learns the names instead of the contexts.  This augmenter adds, for a
fraction of the training sentences, a copy in which entity mentions are swapped
for other mentions of the same label (from the training data) or for
synthetic, never-seen names, so the ner has to rely on context and word shape.

Registered as the spaCy augmenter ``docgraph.ner.mention_replace.v1``; it uses
Python's ``random`` module, which spaCy seeds from ``[training] seed``, so runs
are reproducible.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

_CONSONANTS = "bcdfghklmnprstvxz"
_VOWELS = "aeiou"
_MALWARE_PARTS = [
    "Bot",
    "Spy",
    "Rat",
    "Lock",
    "Bank",
    "Droid",
    "Stealer",
    "Loader",
    "Agent",
    "Hunter",
    "Phantom",
    "Shadow",
    "Cat",
    "Fox",
    "Worm",
    "Kit",
    "Zero",
    "Dark",
    "Ghost",
    "Viper",
]


def synthetic_name(rng: random.Random, label: str) -> list[str]:
    """A plausible, random name for ``label`` as a list of words."""

    def syllables(n: int) -> str:
        return "".join(rng.choice(_CONSONANTS) + rng.choice(_VOWELS) for _ in range(n))

    core = syllables(rng.randint(2, 4))
    kind = rng.random()
    if label == "Malware":
        if kind < 0.35:
            return [core.capitalize()]
        if kind < 0.6:
            return [core.capitalize() + rng.choice(_MALWARE_PARTS)]
        if kind < 0.75:
            return [core[: rng.randint(3, 5)].upper()]
        if kind < 0.9:
            return [core.capitalize(), rng.choice(["RAT", "Trojan", "2.0", "Banker", "Spy"])]
        return [f"Android/{rng.choice(['Spy', 'Banker', 'Trojan'])}.{core.capitalize()}"]
    if label == "Organization":
        if kind < 0.4:
            return [core.capitalize()]
        if kind < 0.6:
            return [core[: rng.randint(3, 4)].upper()]
        return [core.capitalize(), rng.choice(["Security", "Labs", "Research", "Inc", "Group"])]
    # System and the rest: product-like names
    if kind < 0.5:
        return [core.capitalize()]
    return [core.capitalize(), rng.choice(["App", "Store", "Messenger", "Browser", "OS"])]


def _mention_pool(path: str | Path | None, labels: Sequence[str]) -> dict[str, list[list[str]]]:
    """Surface forms (as word lists) of the entities in a ``.spacy`` DocBin."""
    pool: dict[str, list[list[str]]] = {label: [] for label in labels}
    if path is None or not Path(path).exists():
        return pool
    from spacy.tokens import DocBin
    from spacy.vocab import Vocab

    seen: set[tuple[str, tuple[str, ...]]] = set()
    for doc in DocBin().from_disk(path).get_docs(Vocab()):
        for ent in doc.ents:
            key = (ent.label_, tuple(t.text for t in ent))
            if ent.label_ in pool and key not in seen:
                seen.add(key)
                pool[ent.label_].append(list(key[1]))
    return pool


def make_mention_replace_augmenter(
    level: float,
    replace_prob: float,
    synthetic_prob: float,
    labels: list[str],
    pool_path: str | None = None,
) -> Callable[[Any, Any], Iterator[Any]]:
    """Yield every example; with probability ``level`` also a copy with mentions replaced.

    In the copy each entity of one of ``labels`` is replaced with probability
    ``replace_prob``: by a synthetic name with probability ``synthetic_prob``,
    else by another mention of the same label from ``pool_path``.
    """
    pool = _mention_pool(pool_path, labels)
    wanted = set(labels)

    def augment(nlp: Any, example: Any) -> Iterator[Any]:
        yield example
        if random.random() >= level:
            return
        from spacy.tokens import Doc, Span
        from spacy.training import Example

        reference = example.reference
        ents = list(reference.ents)
        if not any(e.label_ in wanted for e in ents):
            return
        words: list[str] = []
        spaces: list[bool] = []
        spans: list[tuple[str, int, int]] = []
        pos = 0
        changed = False
        for ent in ents:
            for token in reference[pos : ent.start]:
                words.append(token.text)
                spaces.append(bool(token.whitespace_))
            new_words = [t.text for t in ent]
            if ent.label_ in wanted and random.random() < replace_prob:
                candidates = pool.get(ent.label_) or []
                if random.random() < synthetic_prob or not candidates:
                    new_words = synthetic_name(random, ent.label_)  # type: ignore[arg-type]
                else:
                    new_words = list(random.choice(candidates))
                changed = True
            start = len(words)
            words.extend(new_words)
            spaces.extend([True] * (len(new_words) - 1) + [bool(ent[-1].whitespace_)])
            spans.append((ent.label_, start, len(words)))
            pos = ent.end
        for token in reference[pos:]:
            words.append(token.text)
            spaces.append(bool(token.whitespace_))
        if not changed:
            return
        ref = Doc(nlp.vocab, words=words, spaces=spaces)
        ref.set_ents([Span(ref, s, e, label=lab) for lab, s, e in spans], default="outside")
        yield Example(Doc(nlp.vocab, words=words, spaces=spaces), ref)

    return augment
