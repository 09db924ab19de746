"""Typed relations (``docgraph_extract_relations``): the built-in rules on text, and
their edges after the real pipeline on each sink — evidence on the edge, one edge per
pair and document, unchanged by reprocessing, gone with the document, the same on
FalkorDB and Neo4j."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

from docgraph.plugins.hookspecs import hookimpl
from docgraph.plugins.relations import extract_relations
from docgraph.plugins.types import Relation, RelationMention
from docgraph.testing import run_stages
from tests.stages.conftest import sink_settings


def mentions(text: str, *spans: tuple[str, str]) -> list[RelationMention]:
    """(surface, graph label) in text order -> mentions keyed by their surface."""
    out, pos = [], 0
    for surface, label in spans:
        start = text.index(surface, pos)
        pos = start + len(surface)
        out.append(
            RelationMention(text=surface, label=label, ner_label=label, key=surface, start=start, end=pos)
        )
    return out


def found(text: str, *spans: tuple[str, str]) -> set[tuple[str, str, str]]:
    ms = mentions(text, *spans)
    return {(ms[r.source].text, r.type, ms[r.target].text) for r in extract_relations(text, ms)}


def test_active_verbs_with_listed_objects() -> None:
    text = "APT28 used X-Agent and Zebrocy against NATO. Fancy Bear exploited CVE-2017-0199 to get in."
    assert found(
        text,
        ("APT28", "Group"),
        ("X-Agent", "Malware"),
        ("Zebrocy", "Malware"),
        ("NATO", "Organization"),
        ("Fancy Bear", "Group"),
        ("CVE-2017-0199", "Vulnerability"),
    ) == {
        ("APT28", "USES", "X-Agent"),
        ("APT28", "USES", "Zebrocy"),
        ("APT28", "TARGETS", "NATO"),  # Zebrocy is the object of "used": its subject carries over
        ("Fancy Bear", "EXPLOITS", "CVE-2017-0199"),
    }


def test_an_earlier_verb_s_object_is_not_the_next_verb_s_subject() -> None:
    text = "GALLIUM used Mimikatz to dump credentials, deployed Poison Ivy and then used PsExec."
    assert found(
        text,
        ("GALLIUM", "Group"),
        ("Mimikatz", "Tool"),
        ("Poison Ivy", "Malware"),
        ("PsExec", "Tool"),
    ) == {("GALLIUM", "USES", "Mimikatz"), ("GALLIUM", "USES", "Poison Ivy"), ("GALLIUM", "USES", "PsExec")}


def test_passive_voice_swaps_the_ends_and_attribution_reads_forward() -> None:
    text = "CVE-2021-44228 was exploited by APT41. The Emotet loader is attributed to TA542."
    assert found(
        text,
        ("CVE-2021-44228", "Vulnerability"),
        ("APT41", "Group"),
        ("Emotet", "Malware"),
        ("TA542", "Group"),
    ) == {("APT41", "EXPLOITS", "CVE-2021-44228"), ("Emotet", "ATTRIBUTED_TO", "TA542")}


def test_what_the_rules_do_not_claim() -> None:
    # a negation, a vendor as subject, a sentence boundary, a far object, a wrong label
    assert not found("Turla did not use Mimikatz.", ("Turla", "Group"), ("Mimikatz", "Tool"))
    assert not found("Kaspersky uses Mimikatz in tests.", ("Kaspersky", "Organization"), ("Mimikatz", "Tool"))
    assert not found("We saw APT29 yesterday. It used WellMess.", ("APT29", "Group"), ("WellMess", "Malware"))
    far = "APT29 used, over the course of many months and in many different places, WellMess."
    assert not found(far, ("APT29", "Group"), ("WellMess", "Malware"))
    assert not found("APT29 used 198.51.100.7.", ("APT29", "Group"), ("198.51.100.7", "Indicator"))
    # a new clause before the verb, a vector, a vendor naming its product, a vendor as attributor
    assert not found(
        "It ran Mimikatz, and lateral movement using PsExec.", ("Mimikatz", "Tool"), ("PsExec", "Tool")
    )
    assert not found(
        "Raspberry Robin infects hosts through infected USB drives.",
        ("Raspberry Robin", "Malware"),
        ("USB", "System"),
    )
    assert found(
        "ALPHV attacked VMware ESXi hosts.",
        ("ALPHV", "Malware"),
        ("VMware", "Organization"),
        ("ESXi", "System"),
    ) == {("ALPHV", "TARGETS", "ESXi")}
    assert not found(
        "SocGholish is operated by the actors Proofpoint tracks as TA569.",
        ("SocGholish", "Malware"),
        ("Proofpoint", "Organization"),
    )


def test_described_subjects_negations_before_the_subject_and_qualified_lists() -> None:
    text = (
        "Volt Typhoon is a PRC actor. The actors exploited CVE-2022-42475 in Fortinet FortiOS, "
        "CVE-2021-40539 in Zoho ManageEngine, and CVE-2023-27997. "
        "We have not observed Volt Typhoon using Cobalt Strike. They used Impacket."
    )
    assert found(
        text,
        ("Volt Typhoon", "Group"),
        ("CVE-2022-42475", "Vulnerability"),
        ("Fortinet FortiOS", "System"),
        ("CVE-2021-40539", "Vulnerability"),
        ("Zoho ManageEngine", "System"),
        ("CVE-2023-27997", "Vulnerability"),
        ("Volt Typhoon", "Group"),
        ("Cobalt Strike", "Malware"),
        ("Impacket", "Tool"),
    ) == {
        ("Volt Typhoon", "EXPLOITS", "CVE-2022-42475"),  # "the actors": the group named before
        ("Volt Typhoon", "EXPLOITS", "CVE-2021-40539"),  # listed past "in <System>,"
        ("Volt Typhoon", "EXPLOITS", "CVE-2023-27997"),
        ("Volt Typhoon", "USES", "Impacket"),  # "They", after the negated sentence
    }
    # a description with nothing of its kind before it, or naming the wrong kind, is no subject
    assert not found("The operators used Mimikatz.", ("Mimikatz", "Tool"))
    assert not found(
        "Mandiant reported it. The malware used CVE-2021-44228.",
        ("Mandiant", "Organization"),
        ("CVE-2021-44228", "Vulnerability"),
    )
    ms = mentions("APT29 is known. The group used WellMess.", ("APT29", "Group"), ("WellMess", "Malware"))
    [rel] = extract_relations("APT29 is known. The group used WellMess.", ms)
    assert "The group used WellMess" == "APT29 is known. The group used WellMess."[rel.start : rel.end]
    assert rel.confidence < 0.8  # a described subject costs confidence


def test_confidence_and_evidence_span() -> None:
    text = "Yesterday Sandworm deployed Industroyer."
    ms = mentions(text, ("Sandworm", "Group"), ("Industroyer", "Malware"))
    [rel] = extract_relations(text, ms)
    assert (rel.type, text[rel.start : rel.end], rel.extractor) == (
        "USES",
        "Sandworm deployed Industroyer",
        "rules:uses",
    )
    assert 0.8 <= rel.confidence <= 0.9


# ------------------------------------------------------------------ on the sinks

REPORT = (
    "APT28 used X-Agent and Zebrocy against NATO governments. "
    "Fancy Bear exploited CVE-2017-0199 to deliver its payload.\n\n"
    "CVE-2021-44228 was exploited by APT41 in December."
)
EDGES = """
MATCH (a:Entity)-[r]->(b:Entity)
WHERE r.document = $id AND type(r) IN ['USES', 'TARGETS', 'EXPLOITS', 'ATTRIBUTED_TO']
RETURN a.key, type(r), b.key, r.chunk, r.start, r.end, r.evidence, r.extractor, r.confidence, r.count, r.stage
ORDER BY a.key, type(r), b.key
"""


class BadExtractor:
    @hookimpl
    def docgraph_extract_relations(self, text: str, mentions: list[Any], settings: Any) -> list[Relation]:
        if "broken-extractor" not in text:
            return []
        return [Relation(type="X", source=0, target=99, start=0, end=1, confidence=1.0, extractor="bad")]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("DOCGRAPH_") and not name.startswith("DOCGRAPH_TEST_"):
            monkeypatch.delenv(name)


async def typed_edges(kind: str, tag: str) -> list[list[Any]]:
    """The report through the pipeline, twice (reprocessing), then deleted: the edges each time."""
    text = f"{REPORT}\n\nReport {tag}."
    async with run_stages(sink_settings(kind), plugins=[BadExtractor()]) as h:
        sink: Any = h.services.graph
        runs = []
        for _ in range(2):
            status = await h.wait(await h.submit_text(text, name=f"rel-{tag}.txt"), timeout=180)
            assert status.state == "completed", status.to_dict()
            out = status.output("ingest")
            runs.append(sink._read(EDGES, {"id": out["document_id"]}))
            assert out["typed_relations"] == len(runs[-1])
        assert runs[0] == runs[1]  # reprocessing changes nothing
        sink.delete_document(out["document_id"])
        assert sink._read(EDGES, {"id": out["document_id"]}) == []

        bad = await h.wait(
            await h.submit_text("APT28 used X-Agent. broken-extractor", name=f"bad-{tag}.txt"), 180
        )
        assert bad.state == "failed" and "mention index 99" in (bad.error or ""), bad.to_dict()
        return runs[0]


@pytest.mark.service
async def test_typed_relations_on_both_sinks_with_evidence() -> None:
    tag = uuid.uuid4().hex[:8]
    falkor = await typed_edges("falkordb", tag)
    neo = await typed_edges("neo4j", tag)
    assert falkor == neo
    by_pair = {(a, t, b): rest for a, t, b, *rest in falkor}
    # X-Agent is an alias of CHOPSTICK (S0023); nothing says "NATO governments" is an entity
    assert set(by_pair) == {
        ("attack:G0007", "USES", "attack:S0023"),
        ("attack:G0007", "USES", "attack:S0251"),
        ("attack:G0007", "EXPLOITS", "Vulnerability:CVE-2017-0199"),
        ("attack:G0096", "EXPLOITS", "Vulnerability:CVE-2021-44228"),
    }
    exploits = by_pair[("attack:G0007", "EXPLOITS", "Vulnerability:CVE-2017-0199")]
    chunk, start, end, evidence, extractor, confidence, count, stage = exploits
    assert (chunk, evidence, extractor, count, stage) == (
        0,
        "Fancy Bear exploited CVE-2017-0199",
        "rules:exploits",
        1,
        "ingest",
    )
    assert REPORT[start:end] == evidence and 0.5 <= confidence <= 1.0
    passive = by_pair[("attack:G0096", "EXPLOITS", "Vulnerability:CVE-2021-44228")]
    assert REPORT[passive[1] : passive[2]] == passive[3] == "CVE-2021-44228 was exploited by APT41"
