"""Built-in relation rules: a trigger verb between two mentions, in one sentence.

Precision first: a rule fires only when its trigger ("uses", "exploited",
"attributed to"...) lies between a subject and an object of fitting labels in
the same sentence, close to both, with no negation in between or just before
the subject.  The subject is the nearest fitting mention before the trigger (so
"FireEye said APT28 used X" gives APT28, not FireEye), the antecedent of a
description there ("the group", "they", "the backdoor"), or, when that mention
is an earlier verb's object ("X used A to ..., deployed B"), that verb's
subject.  The objects are the first fitting mention after it and the ones
listed with it ("X, Y and Z", "CVE-A in P, CVE-B in Q").  Passive forms ("used
by", "exploited by", "targeted by") swap the two.  Confidence is higher for
ATT&CK-resolved subjects and for short gaps.  Precision on blind hand-labelled
held-out reports: bench/relations_eval.py, docs/ner.md.
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
# "CVE-A in Product X, CVE-B in Product Y and CVE-C": a qualifier between listed objects
QUALIFIER = re.compile(r"\s*(?:in|on|for|affecting)\b[^,;.()]{0,60}", re.I)
QUALIFIED_GAP = re.compile(r"^\s*(?:in|on|for|affecting)\b[^,;.()]{0,60},\s*(?:and|or)?\s*$", re.I)
NEGATED_BEFORE = 40  # characters before a subject searched for "no evidence that", "not observed"
# An actor or a piece of software named by a description: the subject is the nearest
# mention of that kind before it in the chunk, within ANTECEDENT_GAP characters
ANAPHORS = (
    (
        re.compile(
            r"\b(?:the|this|these)\s+(?:threat\s+)?(?:actors?|group|operators?|attackers?|adversary|"
            r"intruders?|hackers?|gang|crew)\b|\bthey\b",
            re.I,
        ),
        frozenset({"Group", "Campaign"}),
    ),
    (
        re.compile(
            r"\b(?:the|this)\s+(?:malware|backdoor|implant|trojan|loader|downloader|dropper|ransomware|"
            r"wiper|rootkit|worm|encryptor)\b",
            re.I,
        ),
        frozenset({"Malware", "Tool"}),
    ),
)
ANTECEDENT_GAP = 600
# A new clause between a subject and the verb: "Mimikatz, and lateral movement using PsExec"
CLAUSE_BREAK = re.compile(r",\s*(?:and|but|while|whereas)\b", re.I)
# What an infection travels by is not its target: "spreading through infected USB drives"
VECTOR = re.compile(r"\b(?:via|through|over|from|with|using)\s+(?:[\w-]+\s+){0,2}$", re.I)
# A vendor's name before its product ("against VMware ESXi hosts"): the product is the target
MODIFIER_AFTER = re.compile(r"[ \t]+[A-Z0-9]")
NEAR_GAP = 6  # characters between a trigger and an object of a ``near_only`` label
GAP_COST = 0.002  # confidence lost per character between a subject, its trigger and its object
ANAPHOR_GAP = 50  # the gap a described or carried-over subject is charged: 0.1 of confidence
BY = re.compile(r"\s*by\b", re.I)


@dataclass(frozen=True)
class RelationRule:
    """One relation type: its trigger words and the labels of its two ends."""

    type: str
    trigger: re.Pattern[str]
    sources: frozenset[str]
    targets: frozenset[str]
    base: float = 0.85
    near_only: frozenset[str] = frozenset()  # object labels that must follow the trigger at once


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
        near_only=frozenset({"Organization"}),  # "operated by the actors Proofpoint tracks as"
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
    score = rule.base - GAP_COST * gap
    if source.label not in ACTORS and source.label not in SOFTWARE:
        score -= 0.25  # an unresolved Organization may be a vendor or a victim
    return round(max(0.0, min(1.0, score)), 3)


def _objects(
    text: str, mentions: Sequence[RelationMention], after: list[int], rule: RelationRule, pos: int
) -> list[int]:
    """The first fitting mention after ``pos`` (within MAX_GAP) and those listed with it."""
    targets, listed = rule.targets, rule.type not in _NO_FLIP
    out: list[int] = []
    for i in after:
        m = mentions[i]
        gap = text[pos : m.start]
        modifier = m.label == "Organization" and MODIFIER_AFTER.match(text, m.end) is not None
        if not out:
            if len(gap) > MAX_OBJECT_GAP or NEGATION.search(gap) or OBJECT_GAP_BREAK.search(gap):
                break
            if "," in gap:  # "NineRAT, which uses Telegram for C2, DLRAT": past the verb's phrase
                break
            if m.label in rule.near_only and len(gap) > NEAR_GAP:
                break
            if rule.type == "TARGETS" and VECTOR.search(text, max(0, pos - 40), m.start):
                break  # "... through infected USB": the trigger word itself may be in the vector
            if m.label in targets and not modifier:
                out.append(i)
                pos = m.end
            continue
        if not listed:
            break
        if modifier:
            continue
        if m.label in targets and (LIST_GAP.match(gap) or QUALIFIED_GAP.match(gap)):
            out.append(i)
            pos = m.end
        elif m.label not in targets and QUALIFIER.fullmatch(text, pos, m.end):
            continue  # "... in <System>," between two listed objects
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
        if not inside:
            continue
        for rule in rules:
            for trig in rule.trigger.finditer(text, s_start, s_end):
                before = [i for i in inside if mentions[i].end <= trig.start()]
                after = [i for i in inside if mentions[i].start >= trig.end()]
                if not after or (
                    not before and not any(p.search(text, s_start, trig.start()) for p, _ in ANAPHORS)
                ):
                    continue
                passive = rule.type not in _NO_FLIP and BY.match(text, trig.end()) is not None
                found = (
                    _passive(text, mentions, rule, trig, before, after)
                    if passive
                    else _active(text, mentions, rule, trig, before, after, s_start)
                )
                for src, dst, gap, lo in found:
                    if mentions[src].key == mentions[dst].key:
                        continue
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
    sentence_start: int,
) -> list[tuple[int, int, int, int]]:
    """(subject, object, gap, where the evidence starts) for "<subject> <verb> <objects>"."""
    subject, gap, words = _subject(text, mentions, before, trig, rule.sources, sentence_start)
    if subject is None:
        return []
    return [
        (subject, i, gap + mentions[i].start - trig.end(), words)
        for i in _objects(text, mentions, after, rule, trig.end())
    ]


def _subject(
    text: str,
    mentions: Sequence[RelationMention],
    before: list[int],
    trig: re.Match[str],
    labels: frozenset[str],
    sentence_start: int,
) -> tuple[int | None, int, int]:
    """The verb's subject, its gap to the trigger and where its words start: the mention
    just before the trigger, or the antecedent of a description ("the actors", "the
    backdoor") between that mention and the trigger, in the sentence.  A description's
    gap is charged ANAPHOR_GAP more."""
    last = mentions[before[-1]].end if before else sentence_start
    for pattern, kinds in ANAPHORS:
        if not labels & kinds:
            continue
        found = [m for m in pattern.finditer(text, last, trig.start())]
        if not found:
            continue
        anaphor = found[-1]
        gap_text = text[anaphor.end() : trig.start()]
        if len(gap_text) > MAX_GAP or NEGATION.search(gap_text) or _negated(text, anaphor.start()):
            return None, 0, 0
        earlier = [
            i
            for i, m in enumerate(mentions)
            if m.end <= anaphor.start()
            and anaphor.start() - m.end <= ANTECEDENT_GAP
            and m.label in kinds & labels
        ]
        if not earlier:
            return None, 0, 0
        return earlier[-1], len(gap_text) + ANAPHOR_GAP, anaphor.start()
    if not before:
        return None, 0, 0
    nearest = mentions[before[-1]]
    verb = _last_trigger(text, sentence_start, nearest.start)
    if verb is not None:
        # the nearest mention is an earlier verb's object ("X used Mimikatz to dump
        # credentials, used PsExec"): that verb's subject is this one's too, or none is
        gap_text = text[nearest.end : trig.start()]
        if len(gap_text) > MAX_GAP or NEGATION.search(gap_text) or CLAUSE_BREAK.search(gap_text):
            return None, 0, 0
        prior = [i for i in before if mentions[i].end <= verb.start()]
        subject, carried, words = _subject(text, mentions, prior, verb, labels, sentence_start)
        return subject, carried + ANAPHOR_GAP, words
    near = _nearest_before(text, mentions, before, trig, labels)
    if near is None or _negated(text, nearest.start):
        return None, 0, 0
    return before[-1], near, nearest.start


def _last_trigger(text: str, start: int, end: int) -> re.Match[str] | None:
    """The last trigger word of any rule in ``text[start:end]``."""
    found = [m for rule in RELATION_RULES for m in rule.trigger.finditer(text, start, end)]
    return max(found, key=lambda m: m.start(), default=None)


def _negated(text: str, pos: int) -> bool:
    """A negation just before a subject, in its sentence ("no evidence that X used")."""
    window = text[max(0, pos - NEGATED_BEFORE) : pos]
    window = re.split(r"[.!?;]\s", window)[-1]
    return NEGATION.search(window) is not None


def _passive(
    text: str,
    mentions: Sequence[RelationMention],
    rule: RelationRule,
    trig: re.Match[str],
    before: list[int],
    after: list[int],
) -> list[tuple[int, int, int, int]]:
    """(subject, object, gap, where the evidence starts) for "<object> <verb> by <subject>"."""
    if not before:
        return []
    gap = _nearest_before(text, mentions, before, trig, rule.targets)
    if gap is None or _negated(text, mentions[before[-1]].start):
        return []
    subject = after[0]
    gap_after = text[trig.end() : mentions[subject].start]
    if mentions[subject].label not in rule.sources or len(gap_after) > 12:
        return []
    return [(subject, before[-1], gap + len(gap_after), mentions[before[-1]].start)]


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
    if (
        mentions[before[-1]].label not in labels
        or len(gap_text) > MAX_GAP
        or NEGATION.search(gap_text)
        or CLAUSE_BREAK.search(gap_text)
    ):
        return None
    return len(gap_text)


@hookimpl
def docgraph_extract_relations(text: str, mentions: list[RelationMention], settings: Any) -> list[Relation]:
    return extract_relations(text, mentions)
