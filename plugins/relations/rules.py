"""Built-in relation rules: a trigger verb between two mentions, in one sentence.

Precision first: a rule fires only when its trigger ("uses", "exploited",
"attributed to"...) lies between a subject and an object of fitting labels in
the same sentence, close to both, with no negation in between.  The subject is
the nearest fitting mention before the trigger (so "FireEye said APT28 used X"
gives APT28, not FireEye); the objects are the first fitting mention after it
and the ones listed with it ("X, Y and Z").  Passive forms ("used by",
"exploited by", "targeted by") swap the two.  Confidence is higher for
ATT&CK-resolved subjects and for short gaps.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from docgraph.plugins.hookspecs import hookimpl
from docgraph.plugins.types import Relation, RelationMention

EXTRACTOR = "rules"
ACTORS = frozenset({"Group", "Campaign"})  # ATT&CK-resolved: what the text's subject most likely is
SOFTWARE = frozenset({"Malware", "Tool"})
MAX_GAP = 50  # characters between the subject and the trigger
MAX_OBJECT_GAP = 40  # characters between the trigger and its first object
OBJECT_GAP_BREAK = re.compile(r"[:;()\[\]\"“”]|\b(?:EXECUTIVE|SUMMARY)\b")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])|\n\s*\n|;")
NEGATION = re.compile(r"\b(?:not|no|never|neither|nor|without|unlikely|instead of)\b", re.I)
LIST_GAP = re.compile(r"^\s*(?:,|and|or|as well as|, and|, or|&)?\s*$", re.I)
BY = re.compile(r"\s*by\b", re.I)


@dataclass(frozen=True)
class RelationRule:
    """One relation type: its trigger words and the labels of its two ends."""

    type: str
    trigger: re.Pattern[str]
    sources: frozenset[str]
    targets: frozenset[str]
    base: float = 0.85


def _words(*words: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(words) + r")\b", re.I)


RELATION_RULES: tuple[RelationRule, ...] = (
    RelationRule(
        "USES",
        _words(
            r"uses?",
            "used",
            "using",
            r"utili[sz](?:es?|ed|ing)",
            r"leverag(?:es?|ed|ing)",
            r"employ(?:s|ed|ing)?",
            r"deploy(?:s|ed|ing)?",
            r"relie[sd] on",
            "rely on",
            r"install(?:s|ed|ing)?",
            r"drop(?:s|ped|ping)?",
            r"download(?:s|ed|ing)?",
        ),
        ACTORS | SOFTWARE,
        SOFTWARE | {"Technique"},
    ),
    RelationRule(
        "TARGETS",
        _words(
            r"target(?:s|ed|ing)?",
            r"attack(?:s|ed|ing)",
            r"compromis(?:es?|ed|ing)",
            r"infect(?:s|ed|ing)?",
            "aimed at",
            "directed at",
            "against",
        ),
        ACTORS | SOFTWARE,
        frozenset({"Organization", "System"}),
        base=0.8,
    ),
    RelationRule(
        "EXPLOITS",
        _words(r"exploit(?:s|ed|ing)?", r"abus(?:es?|ed|ing)", "taking advantage of", "takes advantage of"),
        ACTORS | SOFTWARE,
        frozenset({"Vulnerability"}),
        base=0.9,
    ),
    RelationRule(
        "ATTRIBUTED_TO",
        _words("attributed to", "linked to", "tied to", "operated by", "developed by", "belongs to"),
        SOFTWARE | {"Campaign"},
        frozenset({"Group", "Organization"}),
        base=0.85,
    ),
)
# "attributed to"-style triggers read left to right; "<verb> by" flips the others
_NO_FLIP = frozenset({"ATTRIBUTED_TO"})


def _sentences(text: str) -> list[tuple[int, int]]:
    out, start = [], 0
    for m in SENTENCE_END.finditer(text):
        out.append((start, m.start()))
        start = m.end()
    out.append((start, len(text)))
    return out


def _confidence(rule: RelationRule, source: RelationMention, gap: int) -> float:
    score = rule.base - 0.002 * gap
    if source.label not in ACTORS and source.label not in SOFTWARE:
        score -= 0.25  # an unresolved Organization may be a vendor or a victim
    return round(max(0.0, min(1.0, score)), 3)


def _objects(
    text: str,
    mentions: Sequence[RelationMention],
    after: list[int],
    targets: frozenset[str],
    pos: int,
    listed: bool = True,
) -> list[int]:
    """The first fitting mention after ``pos`` (within MAX_GAP) and those listed with it."""
    out: list[int] = []
    for i in after:
        m = mentions[i]
        gap = text[pos : m.start]
        if not out:
            if len(gap) > MAX_OBJECT_GAP or NEGATION.search(gap) or OBJECT_GAP_BREAK.search(gap):
                break
            if m.label in targets:
                out.append(i)
                pos = m.end
            continue
        if listed and m.label in targets and LIST_GAP.match(gap):
            out.append(i)
            pos = m.end
        else:
            break
    return out


def extract_relations(
    text: str, mentions: Sequence[RelationMention], rules: Sequence[RelationRule] = RELATION_RULES
) -> list[Relation]:
    """Every rule's relations in one chunk, each entity pair and type once (the most confident)."""
    best: dict[tuple[str, int, int], Relation] = {}
    for s_start, s_end in _sentences(text):
        inside = [i for i, m in enumerate(mentions) if m.start >= s_start and m.end <= s_end]
        if len(inside) < 2:
            continue
        for rule in rules:
            for trig in rule.trigger.finditer(text, s_start, s_end):
                before = [i for i in inside if mentions[i].end <= trig.start()]
                after = [i for i in inside if mentions[i].start >= trig.end()]
                if not before or not after:
                    continue
                passive = rule.type not in _NO_FLIP and BY.match(text, trig.end()) is not None
                found = (
                    _passive(text, mentions, rule, trig, before, after)
                    if passive
                    else _active(text, mentions, rule, trig, before, after)
                )
                for src, dst, gap in found:
                    if mentions[src].key == mentions[dst].key:
                        continue
                    lo = min(mentions[src].start, mentions[dst].start)
                    hi = max(mentions[src].end, mentions[dst].end)
                    rel = Relation(
                        type=rule.type,
                        source=src,
                        target=dst,
                        start=lo,
                        end=hi,
                        confidence=_confidence(rule, mentions[src], gap),
                        extractor=f"{EXTRACTOR}:{rule.type.lower()}",
                    )
                    key = (rule.type, src, dst)
                    if key not in best or rel.confidence > best[key].confidence:
                        best[key] = rel
    return sorted(best.values(), key=lambda r: (r.start, r.type, r.source, r.target))


def _active(
    text: str,
    mentions: Sequence[RelationMention],
    rule: RelationRule,
    trig: re.Match[str],
    before: list[int],
    after: list[int],
) -> list[tuple[int, int, int]]:
    gap = _nearest_before(text, mentions, before, trig, rule.sources)  # the verb's subject, or nothing is
    if gap is None:
        return []
    return [
        (before[-1], i, gap + mentions[i].start - trig.end())
        for i in _objects(text, mentions, after, rule.targets, trig.end(), listed=rule.type not in _NO_FLIP)
    ]


def _passive(
    text: str,
    mentions: Sequence[RelationMention],
    rule: RelationRule,
    trig: re.Match[str],
    before: list[int],
    after: list[int],
) -> list[tuple[int, int, int]]:
    gap = _nearest_before(text, mentions, before, trig, rule.targets)  # "<object> was used by <subject>"
    if gap is None:
        return []
    subject = after[0]
    gap_after = text[trig.end() : mentions[subject].start]
    if mentions[subject].label not in rule.sources or len(gap_after) > 12:
        return []
    return [(subject, before[-1], gap + len(gap_after))]


def _nearest_before(
    text: str,
    mentions: Sequence[RelationMention],
    before: list[int],
    trig: re.Match[str],
    labels: frozenset[str],
) -> int | None:
    """The gap from the mention just before the trigger to it, if that mention fits
    ``labels`` and nothing (too far, a negation) separates them."""
    gap_text = text[mentions[before[-1]].end : trig.start()]
    if mentions[before[-1]].label not in labels or len(gap_text) > MAX_GAP or NEGATION.search(gap_text):
        return None
    return len(gap_text)


@hookimpl
def docgraph_extract_relations(text: str, mentions: list[RelationMention], settings: Any) -> list[Relation]:
    return extract_relations(text, mentions)
