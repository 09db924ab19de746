"""The cyber/ICS entity pack: regex and gazetteer rules, and merging with the model."""

from __future__ import annotations

import pytest
import spacy

from docgraph.plugins.types import EntityPattern, Mention
from docgraph.stages.ner.pack import (
    COARSE_LABELS,
    _pattern_spans,
    compile_patterns,
    default_patterns,
    docgraph_entity_patterns,
    find_mentions,
    rule_matches,
)

MD5 = "d41d8cd98f00b204e9800998ecf8427e"
SHA1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def found(text: str) -> list[tuple[str, str]]:
    """(matched text, fine type) of every rule match."""
    return [(text[m.start : m.end], m.source.removeprefix("rule:")) for m in rule_matches(text)]


def test_patterns_are_entity_patterns_with_known_labels() -> None:
    patterns = default_patterns()
    assert all(isinstance(p, EntityPattern) for p in patterns)
    assert {p.label for p in patterns} <= set(COARSE_LABELS)
    assert docgraph_entity_patterns(settings=None) == patterns


def test_cve_at_sentence_end_excludes_the_period() -> None:
    text = "Siemens patched CVE-2015-5374."
    assert ("CVE-2015-5374", "cve") in found(text)
    match = next(m for m in rule_matches(text) if m.source == "rule:cve")
    assert match.label == "Vulnerability"
    assert text[match.start : match.end] == "CVE-2015-5374"


def test_cwe_and_attack_ids() -> None:
    assert found("See CWE-79 and T1059.001, T1566 by G0034 using S0002.") == [
        ("CWE-79", "cwe"),
        ("T1059.001", "attack_technique"),
        ("T1566", "attack_technique"),
        ("G0034", "attack_group"),
        ("S0002", "attack_software"),
    ]
    assert found("t1566 T99999 XT1566 G12345") == []


@pytest.mark.parametrize(
    "address",
    [
        "2001:db8::1",
        "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
        "fe80::1",
        "::1",
        "::ffff:192.168.1.1",
        "2001:db8::/32",
    ],
)
def test_ipv6(address: str) -> None:
    assert found(f"C2 server {address}.") == [(address, "ipv6")]


@pytest.mark.parametrize("text", ["at 12:30:45 today", "MAC 00:1a:2b:3c:4d:5e", "std::vector<int>", "a::b"])
def test_not_ipv6(text: str) -> None:
    assert [t for t in found(text) if t[1] == "ipv6"] == []


def test_ipv4() -> None:
    assert found("Beacon to 10.0.0.1. Then 192.168.0.0/16 and 8.8.8[.]8") == [
        ("10.0.0.1", "ipv4"),
        ("192.168.0.0/16", "ipv4"),
        ("8.8.8[.]8", "ipv4"),
    ]
    assert found("not 999.1.1.1 nor version 1.2.3.4.5 nor 1.2.3") == []


def test_hashes_are_not_mistaken_for_each_other() -> None:
    text = f"md5 {MD5}, sha1 {SHA1}; sha256 {SHA256}."
    assert found(text) == [(MD5, "md5"), (SHA1, "sha1"), (SHA256, "sha256")]
    # 33 hex digits is no hash; a SHA-256 is never cut into an MD5; all digits is a number
    assert found(f"{MD5}0 {SHA256}ab {'1' * 32}") == []
    assert found(SHA256.upper()) == [(SHA256.upper(), "sha256")]


def test_urls_domains_emails() -> None:
    text = (
        "Go to https://evil.example.com/path?a=1. Or (http://x.org/a_(b)) or hxxp://bad[.]ru/x "
        "Mail admin@evil-domain.ru or visit evil-domain.ru, not report.pdf nor ASP.NET or e.g. this."
    )
    assert found(text) == [
        ("https://evil.example.com/path?a=1", "url"),
        ("http://x.org/a_(b)", "url"),
        ("hxxp://bad[.]ru/x", "url"),
        ("admin@evil-domain.ru", "email"),
        ("evil-domain.ru", "domain"),
    ]
    assert all(COARSE_LABELS[k] == "Indicator" for _, k in found(text))


def test_ics_gazetteers_and_actors() -> None:
    text = (
        "Modbus/TCP, DNP3, IEC 60870-5-104, IEC 61850, OPC UA, EtherNet/IP, PROFINET and "
        "BACnet on Schneider Electric, Rockwell Automation, ABB, GE, Honeywell, Emerson, "
        "Yokogawa, Omron, Siemens and Mitsubishi Electric devices; APT28 and Sandworm."
    )
    got = found(text)
    assert [t for t, k in got if k == "ics_protocol"] == [
        "Modbus/TCP", "DNP3", "IEC 60870-5-104", "IEC 61850", "OPC UA", "EtherNet/IP",
        "PROFINET", "BACnet",
    ]  # fmt: skip
    assert [t for t, k in got if k == "ics_vendor"] == [
        "Schneider Electric", "Rockwell Automation", "ABB", "GE", "Honeywell", "Emerson",
        "Yokogawa", "Omron", "Siemens", "Mitsubishi Electric",
    ]  # fmt: skip
    assert [t for t, k in got if k == "threat_actor"] == ["APT28", "Sandworm"]
    assert found("the ge of abb and geography") == []  # vendors are case-sensitive


@pytest.fixture(scope="module")
def fake_model():
    """A blank pipeline whose entity_ruler plays the trained model."""
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns(
        [
            {"label": "Vulnerability", "pattern": [{"LOWER": "heap"}, {"LOWER": "overflow"}]},
            {"label": "Malware", "pattern": "Industroyer"},
            {"label": "System", "pattern": [{"LOWER": "siemens"}, {"LOWER": "simatic"}]},
            {"label": "Indicator", "pattern": [{"TEXT": {"REGEX": "^CVE-2015"}}]},
        ]
    )
    return nlp


def test_find_mentions_merges_model_and_rules(fake_model) -> None:
    texts = [
        "Industroyer abused CVE-2015-5374 in Siemens SIMATIC over IEC 60870-5-104.",
        "Nothing here",
        "Heap overflow at 10.1.2.3",
    ]
    result = find_mentions(fake_model, texts)
    assert len(result) == 3
    first = [(m.text, m.label, m.source) for m in result[0]]
    assert first == [
        ("Industroyer", "Malware", "model"),
        # the model said "CVE-2015" Indicator: the typed rule wins
        ("CVE-2015-5374", "Vulnerability", "rule:cve"),
        # the model's System beats the overlapping vendor gazetteer match
        ("Siemens SIMATIC", "System", "model"),
        ("IEC 60870-5-104", "System", "rule:ics_protocol"),
    ]
    assert result[1] == []
    assert [(m.text, m.label, m.source) for m in result[2]] == [
        ("Heap overflow", "Vulnerability", "model"),
        ("10.1.2.3", "Indicator", "rule:ipv4"),
    ]
    for text, mentions in zip(texts, result, strict=True):
        for m in mentions:
            assert isinstance(m, Mention)
            assert text[m.start : m.end] == m.text


def test_find_mentions_offsets_chunks_and_one_pipe_call(fake_model) -> None:
    calls = []

    class Spy:
        def pipe(self, texts, batch_size):
            texts = list(texts)
            calls.append((len(texts), batch_size))
            return fake_model.pipe(texts, batch_size=batch_size)

    doc = "Intro. Industroyer hit 10.0.0.7."
    result = find_mentions(
        Spy(), ["Industroyer hit 10.0.0.7."], chunk_starts=[7], chunk_indexes=[3], batch_size=8
    )
    assert calls == [(1, 8)]
    assert [(m.text, m.start, m.end, m.chunk) for m in result[0]] == [
        ("Industroyer", 7, 18, 3),
        ("10.0.0.7", 23, 31, 3),
    ]
    for m in result[0]:
        assert doc[m.start : m.end] == m.text


def test_find_mentions_rules_only_and_model_only(fake_model) -> None:
    text = ["Industroyer abused CVE-2015-5374"]
    rules_only = find_mentions(fake_model, text, use_model=False)
    assert [m.source for m in rules_only[0]] == ["rule:malware_name", "rule:cve"]  # ATT&CK S0604
    model_only = find_mentions(fake_model, text, patterns=[])
    assert [m.source for m in model_only[0]] == ["model", "model"]
    with pytest.raises(ValueError):
        find_mentions(fake_model, text, chunk_starts=[0, 1])


GAZETTEER_TEXTS = [
    "Sandworm and APT28 used Modbus/TCP and DNP3 against Siemens and Schneider Electric PLCs.",
    "xAPT28 apt28's MODBUS modbusx (Lazarus Group) lazarus   group,EtherNet/IP ethernet/ip.",
    "İstanbul İİ APT28 ß Straße: case folding that changes the length of the text — then Dragonfly.",
    "",
    "IEC 61850\nIEC\t60870-5-104 iec 61850 OPC UA opc-ua BACnet/IP PROFINET profinetx _Siemens Siemens_",
]


@pytest.mark.parametrize("text", GAZETTEER_TEXTS + [t.upper() for t in GAZETTEER_TEXTS])
def test_fast_gazetteer_scan_finds_what_the_plain_regex_finds(text: str) -> None:
    lowered = text.lower()
    compiled = [p for p in compile_patterns(None) if not p.typed]
    assert compiled and all(p.fast is not None for p in compiled)
    found = 0
    for p in compiled:
        expected = [m.span() for m in p.regex.finditer(text)]
        assert list(_pattern_spans(p, text, lowered if len(lowered) == len(text) else None)) == expected
        found += len(expected)
    assert found or not text.strip() or text.startswith("İ")


def test_attack_software_names_fill_gaps_but_ambiguous_ones_do_not_match() -> None:
    text = (
        "The Page loaded Emotet and then Flame; Sofacy and TrickBot followed, not trickbot. "
        "Mimikatz and PsExec ran, then netsh."
    )
    found = {(text[m.start : m.end], m.label) for m in rule_matches(text)}
    assert ("Emotet", "Malware") in found and ("TrickBot", "Malware") in found
    assert ("Mimikatz", "Malware") in found  # an ATT&CK tool; PsExec, dual-use, is a System
    assert ("PsExec", "System") in found and ("PsExec", "Malware") not in found
    malware = {t for t, label in found if label == "Malware"}
    assert (
        not {"Page", "Flame", "Sofacy", "trickbot", "netsh"} & malware
    )  # ambiguous, a group's, case, command


def test_the_trie_gazetteer_matches_what_a_flat_alternation_matches() -> None:
    import random
    import re

    from docgraph.stages.ner.pack import _gazetteer_regex

    rng = random.Random(3)
    alphabet = "abAB1 -."
    terms = sorted(
        {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))).strip() for _ in range(300)}
    )
    terms = [t for t in terms if t]
    flat = "|".join(
        r"\s+".join(re.escape(w) for w in t.split()) for t in sorted(terms, key=lambda t: (-len(t), t))
    )
    flat_re = re.compile(rf"(?<![\w])(?:{flat})(?![\w])")
    trie_re = re.compile(_gazetteer_regex(terms))
    for _ in range(500):
        text = "".join(rng.choice(alphabet + "c ") for _ in range(40))
        assert [m.span() for m in trie_re.finditer(text)] == [m.span() for m in flat_re.finditer(text)], text


def test_reporters_actors_and_platforms_fill_gaps() -> None:
    text = "CISA and Mandiant said HAFNIUM and Lazarus used AnyDesk and PowerShell on Active Directory."
    found = {(text[m.start : m.end], m.label) for m in rule_matches(text)}
    assert {("CISA", "Organization"), ("Mandiant", "Organization")} <= found  # reporters
    assert {("HAFNIUM", "Organization"), ("Lazarus", "Organization")} <= found  # ATT&CK groups
    assert {("AnyDesk", "System"), ("PowerShell", "System"), ("Active Directory", "System")} <= found
