"""The cyber / ICS entity pack: regex and gazetteer rules, merged with the NER model.

Rules are :class:`~docgraph.plugins.types.EntityPattern` objects whose
``label`` is a *fine* type (``cve``, ``sha256``, ``ics_vendor``...).  A match
becomes a :class:`~docgraph.plugins.types.Mention` whose ``label`` is the
coarse CyNER label the fine type maps to (:data:`COARSE_LABELS`, e.g.
``cve -> Vulnerability``, ``sha256 -> Indicator``; unmapped types such as
``attack_technique`` keep their fine name) and whose ``source`` keeps the fine
type: ``"rule:cve"``.  Model entities have ``source == "model"``.

Merging (:func:`merge_spans`):

* *typed* rules (those with a ``regex``: CVE, hashes, IPs, URLs, ATT&CK IDs...)
  win over overlapping model entities, which are dropped;
* *gazetteer* rules (``terms``: vendors, protocols, threat actors) only fill
  gaps: a model entity overlapping them is kept and the rule match dropped;
* among overlapping rule matches, typed beats gazetteer, then longer beats
  shorter, then earlier beats later.

Offsets are character offsets in the text given (plus the chunk's start when
``chunk_starts`` is passed), and ``text[start:end] == mention.text`` always.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from docgraph.plugins.entities.attack import ADMIN_TOOLS, group_names, software_names
from docgraph.plugins.hookspecs import hookimpl
from docgraph.plugins.types import EntityPattern, Mention

if TYPE_CHECKING:
    from spacy.language import Language

# ------------------------------------------------------------ tokenizer fix

# spaCy's English tokenizer splits "CVE-2015-5374" into "CVE-2015", "-", "5374"
# (the digit-hyphen-digit infix rule).  A token_match keeps it whole; it is
# anchored so that a trailing "." is still split off as a suffix.
CVE_TOKEN_PATTERN = r"^(?:[Cc][Vv][Ee]-\d{4}-\d{4,7})$"


def apply_tokenizer_fix(nlp: Any) -> Any:
    """Keep CVE IDs (``CVE-2015-5374``) as one token in ``nlp``'s tokenizer; idempotent.

    The fix is a compiled regex's ``match`` so it is saved with the pipeline
    (``nlp.to_disk``) and is there again after ``spacy.load``.
    """
    tokenizer = nlp.tokenizer
    old = tokenizer.token_match
    old_pattern = old.__self__.pattern if old is not None else None
    if old_pattern is not None and CVE_TOKEN_PATTERN in old_pattern:
        return nlp
    pattern = CVE_TOKEN_PATTERN if old_pattern is None else f"{CVE_TOKEN_PATTERN}|(?:{old_pattern})"
    tokenizer.token_match = re.compile(pattern).match
    return nlp


# ------------------------------------------------------------------ the pack

#: fine rule type -> CyNER label (Indicator, Malware, Organization, System, Vulnerability)
COARSE_LABELS: dict[str, str] = {
    "cve": "Vulnerability",
    "cwe": "Vulnerability",
    "ipv4": "Indicator",
    "ipv6": "Indicator",
    "domain": "Indicator",
    "url": "Indicator",
    "email": "Indicator",
    "md5": "Indicator",
    "sha1": "Indicator",
    "sha256": "Indicator",
    "sha512": "Indicator",
    "ics_vendor": "Organization",
    "threat_actor": "Organization",
    "security_org": "Organization",
    "system_name": "System",
    "malware_name": "Malware",
    "ics_protocol": "System",
    # no CyNER counterpart: the fine type is the label
    "attack_technique": "AttackTechnique",
    "attack_group": "AttackGroup",
    "attack_software": "AttackSoftware",
}

_DOT = r"(?:\.|\[\.\]|\(\.\)|\[dot\])"  # "." and its defanged forms
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = rf"{_OCTET}(?:{_DOT}{_OCTET}){{3}}"
_H = r"[0-9A-Fa-f]{1,4}"
_IPV6 = (
    r"(?:"
    rf"(?:{_H}:){{7}}{_H}"
    rf"|(?:{_H}:){{1,7}}:"
    rf"|(?:{_H}:){{1,6}}:{_H}"
    rf"|(?:{_H}:){{1,5}}(?::{_H}){{1,2}}"
    rf"|(?:{_H}:){{1,4}}(?::{_H}){{1,3}}"
    rf"|(?:{_H}:){{1,3}}(?::{_H}){{1,4}}"
    rf"|(?:{_H}:){{1,2}}(?::{_H}){{1,5}}"
    rf"|{_H}:(?::{_H}){{1,6}}"
    rf"|:(?::{_H}){{1,7}}"
    rf"|(?:{_H}:){{6}}{_IPV4}"
    rf"|::(?:[Ff]{{4}}:)?{_IPV4}"
    r")"
)
# Top-level domains accepted for bare domains (URLs and e-mails take any).
# File extensions that are also TLDs (.zip, .mov, .py, .sh, .rs, .md...) are left out.
_TLDS = sorted(
    """
    com net org info biz io co me tv cc ws name pro mobi asia xyz top online site club
    live app dev cloud space tech store shop website icu vip work link click pw su
    ru cn uk de fr jp kr in br ir kp ua by kz tr vn tw hk sg au ca us eu nl it es pl
    ch se no fi dk be at cz sk hu ro bg gr pt il sa ae pk id my th ph mx ar cl za ng
    eg lt lv ee nz ie is lu gov edu mil int onion
    """.split(),
    key=len,
    reverse=True,
)
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = rf"(?:{_LABEL}{_DOT})+(?:{'|'.join(_TLDS)})"

ICS_PROTOCOLS = [
    "Modbus",
    "Modbus/TCP",
    "Modbus TCP",
    "Modbus RTU",
    "Modbus ASCII",
    "DNP3",
    "DNP 3",
    "IEC 61850",
    "IEC 60870-5-104",
    "IEC 60870-5-101",
    "IEC 104",
    "OPC UA",
    "OPC-UA",
    "OPC DA",
    "OPC Classic",
    "EtherNet/IP",
    "PROFINET",
    "PROFIBUS",
    "BACnet",
    "BACnet/IP",
    "S7comm",
    "S7comm-plus",
    "EtherCAT",
    "CC-Link",
    "HART-IP",
    "WirelessHART",
    "Foundation Fieldbus",
    "IEC 62351",
]
ICS_VENDORS = [
    "Siemens",
    "Schneider Electric",
    "Rockwell Automation",
    "Allen-Bradley",
    "ABB",
    "Honeywell",
    "Emerson",
    "Emerson Electric",
    "GE",
    "General Electric",
    "GE Vernova",
    "GE Digital",
    "Yokogawa",
    "Mitsubishi Electric",
    "Omron",
    "Hitachi Energy",
    "Moxa",
    "Phoenix Contact",
    "Beckhoff",
    "WAGO",
    "Advantech",
    "Delta Electronics",
    "Fuji Electric",
    "Johnson Controls",
    "AVEVA",
    "Wonderware",
    "Inductive Automation",
    "Hirschmann",
    "Belden",
    "Eaton",
    "Danfoss",
    "Bosch Rexroth",
    "B&R Industrial Automation",
    "Triconex",
    "Valmet",
    "Metso",
    "Weidmüller",
    "Red Lion",
    "Unitronics",
]
# Who reports, warns and responds: security vendors, their research teams, CERTs and
# agencies (CyNER labels them Organization: "Trend", "Talos", "Kaspersky").  Platform
# companies whose name is also a product (Microsoft, Google, Apple) are left to the model.
SECURITY_ORGS = [
    "Mandiant",
    "FireEye",
    "CrowdStrike",
    "Secureworks",
    "ESET",
    "Kaspersky",
    "Symantec",
    "Broadcom",
    "Trend Micro",
    "Sophos",
    "McAfee",
    "Trellix",
    "Check Point",
    "Palo Alto Networks",
    "Unit 42",
    "Cisco Talos",
    "Talos",
    "Recorded Future",
    "Proofpoint",
    "Volexity",
    "Dragos",
    "Claroty",
    "Nozomi Networks",
    "SentinelOne",
    "SentinelLABS",
    "Bitdefender",
    "Avast",
    "Malwarebytes",
    "Group-IB",
    "Positive Technologies",
    "Fortinet",
    "FortiGuard Labs",
    "Zscaler",
    "Huntress",
    "Arctic Wolf",
    "Red Canary",
    "Rapid7",
    "Tenable",
    "Qualys",
    "Kroll",
    "Sekoia",
    "Intezer",
    "Cybereason",
    "Elastic Security Labs",
    "Lookout",
    "Black Lotus Labs",
    "Lumen",
    "Google TAG",
    "Threat Analysis Group",
    "Microsoft Threat Intelligence",
    "MSTIC",
    "G DATA",
    "WithSecure",
    "F-Secure",
    "Netskope",
    "Darktrace",
    "Vectra",
    "CISA",
    "Cybersecurity and Infrastructure Security Agency",
    "FBI",
    "Federal Bureau of Investigation",
    "NSA",
    "National Security Agency",
    "US-CERT",
    "ICS-CERT",
    "DHS",
    "Department of Homeland Security",
    "Department of Justice",
    "Department of the Treasury",
    "Europol",
    "Interpol",
    "ENISA",
    "NCSC",
    "National Cyber Security Centre",
    "ACSC",
    "Australian Cyber Security Centre",
    "CCCS",
    "Canadian Centre for Cyber Security",
    "BSI",
    "ANSSI",
    "CERT-UA",
    "CERT-EU",
    "CERT-FR",
    "JPCERT/CC",
    "KrCERT",
    "MS-ISAC",
    "Health-ISAC",
    "FS-ISAC",
    "E-ISAC",
    "MITRE",
]
# Platforms, admin software and dual-use tools that CTI names as the systems attacked or
# abused (System, as CyNER labels products and platforms).
SYSTEM_TERMS = [
    "PowerShell",
    "Windows PowerShell",
    "Active Directory",
    "Azure Active Directory",
    "Entra ID",
    "Remote Desktop Protocol",
    "RDP",
    "LSASS",
    "Windows Management Instrumentation",
    "WMI",
    "AnyDesk",
    "TeamViewer",
    "Atera",
    "Splashtop",
    "ConnectWise ScreenConnect",
    "ProcDump",
    "Procdump",
    "Sysinternals",
    "WinSCP",
    "FileZilla",
    "7-Zip",
    "WinRAR",
    "Sysmon",
    "Velociraptor",
    "vssadmin",
    "Okta",
    "OneDrive",
    "SharePoint",
    "Microsoft 365",
    "Office 365",
    "Outlook",
    "Exchange Server",
    *ADMIN_TOOLS,  # plugins/entities/attack.py: kept out of the Malware gazetteer
]
THREAT_ACTORS = [
    "APT1",
    "APT3",
    "APT10",
    "APT28",
    "APT29",
    "APT32",
    "APT33",
    "APT34",
    "APT35",
    "APT37",
    "APT38",
    "APT39",
    "APT40",
    "APT41",
    "Fancy Bear",
    "Cozy Bear",
    "Sofacy",
    "Sandworm",
    "Sandworm Team",
    "Voodoo Bear",
    "Lazarus Group",
    "Turla",
    "Equation Group",
    "Dragonfly",
    "Dragonfly 2.0",
    "Energetic Bear",
    "Berserk Bear",
    "XENOTIME",
    "ELECTRUM",
    "CHERNOVITE",
    "KAMACITE",
    "MAGNALLIUM",
    "Volt Typhoon",
    "Salt Typhoon",
    "Kimsuky",
    "OilRig",
    "MuddyWater",
    "Charming Kitten",
    "Gamaredon",
    "Wizard Spider",
    "FIN7",
    "FIN8",
    "Cyber Av3ngers",
    "CyberAv3ngers",
    "TEMP.Veles",
    "Stuxnet operators",
]


def default_patterns() -> list[EntityPattern]:
    """The cyber/ICS pack: typed regex rules and gazetteers (fresh list, safe to extend)."""
    return [
        EntityPattern(label="cve", regex=r"\bCVE-\d{4}-\d{4,7}\b"),
        EntityPattern(label="cwe", regex=r"\bCWE-\d{1,5}\b"),
        EntityPattern(
            label="attack_technique",
            regex=r"(?<![\w.])T1\d{3}(?:\.\d{3})?(?![\w])",
            case_sensitive=True,
        ),
        EntityPattern(label="attack_group", regex=r"\bG[01]\d{3}\b", case_sensitive=True),
        EntityPattern(label="attack_software", regex=r"\bS[01]\d{3}\b", case_sensitive=True),
        EntityPattern(
            label="url",
            regex=(
                r"\b(?:https?|hxxps?|h\[xx\]ps?|ftp|sftp|wss?)(?::|\[:\])//"
                r"(?:[^\s<>\"'\[\]{}|\\^`]|\[\.\]|\[dot\]|\[:\])+"
            ),
        ),
        EntityPattern(
            label="email",
            regex=(
                r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*(?:@|\[@\]|\[at\])"
                rf"(?:{_LABEL}{_DOT})+[A-Za-z]{{2,24}}\b"
            ),
        ),
        EntityPattern(label="sha512", regex=r"(?<![0-9A-Za-z])[0-9A-Fa-f]{128}(?![0-9A-Za-z])"),
        EntityPattern(label="sha256", regex=r"(?<![0-9A-Za-z])[0-9A-Fa-f]{64}(?![0-9A-Za-z])"),
        EntityPattern(label="sha1", regex=r"(?<![0-9A-Za-z])[0-9A-Fa-f]{40}(?![0-9A-Za-z])"),
        EntityPattern(label="md5", regex=r"(?<![0-9A-Za-z])[0-9A-Fa-f]{32}(?![0-9A-Za-z])"),
        EntityPattern(label="ipv6", regex=rf"(?<![\w:.]){_IPV6}(?:/\d{{1,3}})?(?![\w:]|\.\d)"),
        EntityPattern(label="ipv4", regex=rf"(?<![\w.]){_IPV4}(?:/\d{{1,2}})?(?![\w]|{_DOT}\d)"),
        EntityPattern(
            label="domain",
            # TLD lower-case only: "ASP.NET" or "Node.JS" are not domains.
            regex=rf"(?<![\w.@/-]){_DOMAIN}(?![\w-]|{_DOT}[A-Za-z0-9])",
            case_sensitive=True,
        ),
        EntityPattern(label="ics_protocol", terms=ICS_PROTOCOLS, case_sensitive=False),
        EntityPattern(label="ics_vendor", terms=ICS_VENDORS, case_sensitive=True),
        EntityPattern(label="threat_actor", terms=THREAT_ACTORS, case_sensitive=False),
        EntityPattern(label="security_org", terms=SECURITY_ORGS, case_sensitive=True),
        EntityPattern(label="system_name", terms=SYSTEM_TERMS, case_sensitive=True),
        # ATT&CK's malware and tool names (plugins/entities/attack.py), as written: they fill
        # gaps the model left, never overrule it
        EntityPattern(label="malware_name", terms=list(software_names()), case_sensitive=True),
        # and ATT&CK's group names and aliases, as written (CyNER labels actors Organization)
        EntityPattern(label="threat_actor", terms=list(group_names()), case_sensitive=True),
    ]


# ---------------------------------------------------------------- matching


def _is_valid_ipv4(text: str) -> bool:
    address = re.sub(r"\[\.\]|\(\.\)|\[dot\]", ".", text).split("/")[0]
    try:
        ipaddress.IPv4Address(address)
    except ValueError:
        return False
    return True


def _is_valid_ipv6(text: str) -> bool:
    if not any(c.isdigit() for c in text):  # "a::b", "dead::beef" are rarely addresses in prose
        return False
    try:
        ipaddress.IPv6Address(text.split("/")[0])
    except ValueError:
        return False
    return True


def _looks_like_hash(text: str) -> bool:
    # a real digest has both digits and letters; all-digit runs are numbers
    return any(c.isdigit() for c in text) and any(c.isalpha() for c in text)


_VALIDATORS: dict[str, Callable[[str], bool]] = {
    "ipv4": _is_valid_ipv4,
    "ipv6": _is_valid_ipv6,
    "md5": _looks_like_hash,
    "sha1": _looks_like_hash,
    "sha256": _looks_like_hash,
    "sha512": _looks_like_hash,
}
_TRAILING = ".,;:!?'\""


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Drop trailing sentence punctuation and unbalanced closing brackets from a URL/e-mail."""
    while end > start:
        last = text[end - 1]
        span = text[start:end]
        if last in _TRAILING:
            end -= 1
        elif last == ")" and span.count("(") < span.count(")"):
            end -= 1
        else:
            break
    return start, end


@dataclass(frozen=True)
class CompiledPattern:
    label: str  # fine type
    coarse: str
    regex: re.Pattern[str]
    typed: bool  # a regex rule (wins over the model) vs. a gazetteer (fills gaps)
    # Gazetteers only: ``regex`` without its leading ``(?<!\w)`` (which defeats
    # the regex engine's first-character scan; checked in Python instead), and
    # for case-insensitive ones lowercased, to run on ``text.lower()``.  Same
    # matches, 2-4x faster.
    fast: re.Pattern[str] | None = None
    on_lowered: bool = False

    @property
    def source(self) -> str:
        return f"rule:{self.label}"


@dataclass(frozen=True)
class SpanMatch:
    """A candidate entity: character offsets, labels and who found it."""

    start: int
    end: int
    label: str  # coarse label (the Mention label)
    source: str  # "model" or "rule:<fine type>"
    typed: bool = False

    @property
    def is_rule(self) -> bool:
        return self.source != "model"


# What every match of a pattern contains: text without it skips that pattern's scan
# (most chunks have no IPv6 address, no hash and no e-mail address).
_IPV6_HINT = re.compile(r"::|[0-9A-Fa-f]:[0-9A-Fa-f]")
_HASH_HINT = re.compile(r"[0-9A-Fa-f]{32}")
_EMAIL_HINT = re.compile(r"@|\[at\]", re.IGNORECASE)
_HINTS = {
    "ipv6": _IPV6_HINT,
    "sha512": _HASH_HINT,
    "sha256": _HASH_HINT,
    "sha1": _HASH_HINT,
    "md5": _HASH_HINT,
    "email": _EMAIL_HINT,
}
_NOT_AFTER_WORD = r"(?<![\w])"
_WORD_CHAR = re.compile(r"\w")


def _gazetteer_regex(terms: Iterable[str]) -> str:
    r"""One regex for all ``terms``, built as a trie (``Emotet(?:2)?``): Python's ``re``
    tries a flat alternation's branches one by one at every position, so a thousand
    names were 3x slower to match than the rest of the pack together.  Longer matches
    first (the optional tails are greedy), spaces as ``\s+``; sorted, so the pattern
    is the same whatever PYTHONHASHSEED."""
    trie: dict[str, Any] = {}
    for term in sorted({" ".join(t.split()) for t in terms if t.strip()}):
        node = trie
        for ch in term:
            node = node.setdefault(ch, {})
        node[""] = {}

    def render(node: dict[str, Any]) -> str:
        branches = [(r"\s+" if ch == " " else re.escape(ch)) + render(node[ch]) for ch in sorted(node) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return rf"{_NOT_AFTER_WORD}(?:{render(trie)})(?![\w])"


def _fast_gazetteer(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    body = pattern.removeprefix(_NOT_AFTER_WORD)
    return re.compile(body if case_sensitive else body.lower())


def _pattern_spans(pattern: CompiledPattern, text: str, lowered: str | None) -> Iterator[tuple[int, int]]:
    """The spans of ``pattern.regex.finditer(text)``, found with ``pattern.fast``."""
    if pattern.fast is None or (pattern.on_lowered and lowered is None):
        yield from (m.span() for m in pattern.regex.finditer(text))
        return
    subject = lowered if pattern.on_lowered and lowered is not None else text
    pos = 0
    while (m := pattern.fast.search(subject, pos)) is not None:
        start, end = m.span()
        if start and _WORD_CHAR.match(subject, start - 1):  # the lookbehind the regex had
            pos = start + 1
            continue
        yield start, end
        pos = max(end, start + 1)


@lru_cache(maxsize=32)
def _compile(
    key: tuple[tuple[str, str | None, tuple[str, ...], bool], ...],
) -> tuple[CompiledPattern, ...]:
    compiled = []
    for label, regex, terms, case_sensitive in key:
        flags = 0 if case_sensitive else re.IGNORECASE
        if regex is not None:
            pattern, typed = regex, True
        elif terms:
            pattern, typed = _gazetteer_regex(terms), False
        else:
            continue
        compiled.append(
            CompiledPattern(
                label=label,
                coarse=COARSE_LABELS.get(label, label),
                regex=re.compile(pattern, flags),
                typed=typed,
                fast=None if typed else _fast_gazetteer(pattern, case_sensitive),
                on_lowered=not typed and not case_sensitive,
            )
        )
    return tuple(compiled)


def compile_patterns(patterns: Sequence[EntityPattern] | None) -> tuple[CompiledPattern, ...]:
    """Compile (and cache) entity patterns; ``None`` means :func:`default_patterns`."""
    if patterns is None:
        patterns = default_patterns()
    key = tuple((p.label, p.regex, tuple(p.terms), p.case_sensitive) for p in patterns)
    return _compile(key)


def rule_matches(
    text: str, patterns: Sequence[EntityPattern] | tuple[CompiledPattern, ...] | None = None
) -> list[SpanMatch]:
    """All rule matches in ``text``, overlaps resolved (typed > gazetteer, longer, earlier).

    ``patterns`` may be already compiled (:func:`compile_patterns`).
    """
    compiled = (
        patterns
        if patterns and all(isinstance(p, CompiledPattern) for p in patterns)
        else compile_patterns(patterns)  # type: ignore[arg-type]
    )
    found: list[SpanMatch] = []
    lowered: str | None = text.lower()
    if len(lowered) != len(text):  # a few characters lowercase to two: offsets would shift
        lowered = None
    hinted: dict[re.Pattern[str], bool] = {}
    for pattern in compiled:  # type: ignore[union-attr]
        hint = _HINTS.get(pattern.label)
        if hint is not None:
            if hint not in hinted:
                hinted[hint] = hint.search(text) is not None
            if not hinted[hint]:
                continue
        for start, end in _pattern_spans(pattern, text, lowered):
            if pattern.label in ("url", "email", "domain"):
                start, end = _trim(text, start, end)
            if end <= start:
                continue
            validator = _VALIDATORS.get(pattern.label)
            if validator is not None and not validator(text[start:end]):
                continue
            found.append(SpanMatch(start, end, pattern.coarse, pattern.source, pattern.typed))
    found.sort(key=lambda s: (not s.typed, -(s.end - s.start), s.start))
    return _non_overlapping(found)


def _overlaps(a: SpanMatch, b: SpanMatch) -> bool:
    return a.start < b.end and b.start < a.end


def _non_overlapping(ranked: Iterable[SpanMatch]) -> list[SpanMatch]:
    kept: list[SpanMatch] = []
    for span in ranked:
        if not any(_overlaps(span, k) for k in kept):
            kept.append(span)
    return sorted(kept, key=lambda s: s.start)


def merge_spans(model: Sequence[SpanMatch], rules: Sequence[SpanMatch]) -> list[SpanMatch]:
    """Merge model entities with (already non-overlapping) rule matches.

    Typed rule matches replace the model entities they overlap; gazetteer
    matches are kept only where no model entity is.
    """
    typed = [r for r in rules if r.typed]
    kept_model = [m for m in model if not any(_overlaps(m, r) for r in typed)]
    gazetteer = [g for g in rules if not g.typed and not any(_overlaps(g, m) for m in kept_model)]
    return sorted([*typed, *kept_model, *gazetteer], key=lambda s: (s.start, s.end))


def model_spans(doc: Any, labels: Iterable[str] | None = None) -> list[SpanMatch]:
    """A Doc's entities as :class:`SpanMatch` (only ``labels`` when given)."""
    keep = set(labels) if labels is not None else None
    return [
        SpanMatch(ent.start_char, ent.end_char, ent.label_, "model")
        for ent in doc.ents
        if keep is None or ent.label_ in keep
    ]


def find_mentions(
    nlp: Language,
    texts: list[str],
    patterns: Sequence[EntityPattern] | None = None,
    *,
    use_model: bool = True,
    chunk_starts: Sequence[int] | None = None,
    chunk_indexes: Sequence[int] | None = None,
    batch_size: int = 32,
    labels: Iterable[str] | None = None,
) -> list[list[Mention]]:
    """Entity mentions of each text: model entities merged with rule matches.

    Runs ``nlp.pipe`` over all ``texts`` in batches with the already loaded
    ``nlp`` (it is never reloaded).  ``patterns=None`` uses
    :func:`default_patterns`; pass ``[]`` for model entities only, or
    ``use_model=False`` for rules only.  Offsets are relative to each text,
    plus ``chunk_starts[i]`` when given (document offsets for chunks);
    ``Mention.chunk`` is ``chunk_indexes[i]`` (default ``i``).  ``labels``
    restricts model entities (default: all the model predicts).
    """
    if chunk_starts is not None and len(chunk_starts) != len(texts):
        raise ValueError("chunk_starts must have one offset per text")
    if chunk_indexes is not None and len(chunk_indexes) != len(texts):
        raise ValueError("chunk_indexes must have one index per text")
    compiled = compile_patterns(patterns)  # once, and fail early on a bad regex
    if use_model:
        docs: Iterable[Any] = nlp.pipe(texts, batch_size=batch_size)
    else:
        docs = (None for _ in texts)
    results: list[list[Mention]] = []
    for i, (text, doc) in enumerate(zip(texts, docs, strict=True)):
        predicted = model_spans(doc, labels) if doc is not None else []
        merged = merge_spans(predicted, rule_matches(text, compiled) if compiled else [])
        offset = chunk_starts[i] if chunk_starts is not None else 0
        chunk = chunk_indexes[i] if chunk_indexes is not None else i
        results.append(
            [
                Mention(
                    label=s.label,
                    text=text[s.start : s.end],
                    start=s.start + offset,
                    end=s.end + offset,
                    chunk=chunk,
                    source=s.source,
                )
                for s in merged
            ]
        )
    return results


# --------------------------------------------------------------- plugin hook


@hookimpl
def docgraph_entity_patterns(settings: Any) -> list[EntityPattern]:
    """Plugin hook: register this module as a docgraph plugin to contribute the pack's rules."""
    return default_patterns()
