#!/usr/bin/env python
"""Precision of the typed relations docgraph writes, on hand-labelled candidates.

    python bench/relations_eval.py                      # precision per type and source
    python bench/relations_eval.py --unlabelled new.jsonl   # candidates still to label

Every text goes through what the pipeline runs: the extractor (normalize +
chunk), the NER stage's ``find_mentions`` (the shipped model + the entity
patterns), entity resolution, then ``typed_relations`` from the ingest stage:
the edges ingest writes (one per source entity, type, target entity and
document, at ``DOCGRAPH_RELATIONS__MIN_CONFIDENCE``).  Each edge is matched to
a line of the labelled file by (text, type, source key, target key).

The texts:

  reports     bench/data/relations-reports/27-40: CTI reports written for this
              measurement (by a helper that never saw the rules) in varied voices
              (vendor blogs, advisories, IR notes, digests, news), with the hard
              cases real prose has (vendors and victims as subjects, negations,
              hedges, reported speech, pronouns, long sentences); labelled blind
              (the labeller saw candidates, not which of them are written) and
              never read while the rules were written: the held-out figure.
  reports-dev 01-26 of the same, labelled the same way: 01-08 were read while the
              rules got described subjects, negated subjects and qualified lists;
              09-26 were the held-out set of that version (precision 0.767, 23/30)
              and their errors then gave the clause, vector, vendor-before-product
              and attributor checks, so they are development data now.
  cyner-valid CyNER's valid split (../shared/datasets/cyner/valid.txt), one text
              per 20 sentences, tokens joined by spaces.
  examples    examples/docs/*.

The labelled file (bench/data/relations-labelled.jsonl) has one JSON object per
line: ``text``, ``type``, ``source``, ``target`` (entity keys), ``evidence``
(what the edge carries), ``correct`` (true: the evidence says exactly this
relation between these two entities; false: anything else, including a right
relation between wrongly recognised or wrongly resolved entities) and ``why``
(a note on the false ones).  Labels were given by hand, by a labeller who saw
each candidate's evidence and context (and opened the report where that was not
enough) but not whether docgraph writes it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

REPORTS = ROOT / "bench" / "data" / "relations-reports"
LABELS = ROOT / "bench" / "data" / "relations-labelled.jsonl"
CYNER_VALID = ROOT.parent / "shared" / "datasets" / "cyner" / "valid.txt"
EXAMPLES = ROOT / "examples" / "docs"
DEV_BEFORE = "61"  # reports 01-60 were read while the rules were revised: reported apart
CONTENT_TYPES = {".txt": "text/plain", ".md": "text/markdown", ".html": "text/html"}


def texts(cyner_valid: Path, per_text: int = 20) -> list[tuple[str, str, bytes, str]]:
    """(source, name, bytes, content type) of every text measured."""
    out = [
        ("reports-dev" if p.name < DEV_BEFORE else "reports", p.name, p.read_bytes(), "text/plain")
        for p in sorted(REPORTS.glob("*.txt"))
    ]
    out += [
        ("examples", p.name, p.read_bytes(), CONTENT_TYPES.get(p.suffix, "text/plain"))
        for p in sorted(EXAMPLES.iterdir())
        if p.suffix in CONTENT_TYPES
    ]
    if cyner_valid.exists():
        from docgraph.stages.ner.conll import read_conll

        sentences = [s.text for s in read_conll(cyner_valid)]
        for i in range(0, len(sentences), per_text):
            body = "\n".join(sentences[i : i + per_text]).encode()
            out.append(("cyner-valid", f"valid-{i // per_text:03d}", body, "text/plain"))
    return out


LOOSE_SPAN = 400  # characters from a mention to the trigger, for the loose candidates


def loose_pairs(text: str, mentions: list[Any]) -> list[tuple[str, int, int, int, int, int, int]]:
    """Every (type, source, target, start, end, sentence start, sentence end) where a rule's
    trigger lies between two mentions of fitting labels in one sentence, each within
    LOOSE_SPAN of it: what a labeller judges, whether the rules write it or not."""
    from docgraph.plugins.relations.rules import _NO_FLIP, BY, RELATION_RULES, _sentences

    out = []
    for s_start, s_end in _sentences(text):
        inside = [i for i, m in enumerate(mentions) if m.start >= s_start and m.end <= s_end]
        for rule in RELATION_RULES:
            for trig in rule.trigger.finditer(text, s_start, s_end):
                before = [i for i in inside if trig.start() - LOOSE_SPAN <= mentions[i].end <= trig.start()]
                after = [i for i in inside if trig.end() <= mentions[i].start <= trig.end() + LOOSE_SPAN]
                passive = rule.type not in _NO_FLIP and BY.match(text, trig.end()) is not None
                src_labels, dst_labels = (
                    (rule.targets, rule.sources) if passive else (rule.sources, rule.targets)
                )
                for b in before:
                    for a in after:
                        if mentions[b].label not in src_labels or mentions[a].label not in dst_labels:
                            continue
                        src, dst = (a, b) if passive else (b, a)
                        if mentions[src].key == mentions[dst].key:
                            continue
                        out.append((rule.type, src, dst, mentions[b].start, mentions[a].end, s_start, s_end))
    return out


def candidates(items: list[tuple[str, str, bytes, str]]) -> list[dict[str, Any]]:
    """Per text and (source entity, type, target entity): the loose candidates, and
    whether ingest writes it (``written``, with the edge's own evidence and confidence)."""
    from docgraph.core.settings import Settings
    from docgraph.plugins.entities.resolve import resolver_for
    from docgraph.plugins.manager import plugin_manager
    from docgraph.stages.ingest import relation_mentions, resolve_mentions, typed_relations
    from docgraph.stages.ner.model import load_ner_model
    from docgraph.stages.ner.pack import find_mentions

    settings = Settings()
    pm = plugin_manager(settings)
    patterns = [p for group in pm.hook.docgraph_entity_patterns(settings=settings) for p in group]
    resolver = resolver_for(settings, pm)
    nlp = load_ner_model()
    out = []
    for source, name, data, content_type in items:
        doc = pm.hook.docgraph_extract_text(data=data, content_type=content_type, settings=settings)
        chunks = [
            {"id": f"{name}:{c.index}", "index": c.index, "text": c.text, "start": c.start}
            for c in doc.chunks
        ]
        per_chunk = find_mentions(
            nlp,
            [c["text"] for c in chunks],
            patterns,
            chunk_starts=[c["start"] for c in chunks],
            chunk_indexes=[c["index"] for c in chunks],
        )
        mentions = [m.model_dump() for ms in per_chunk for m in ms]
        entities, rows = resolve_mentions(name, mentions, resolver)
        records = {"chunks": chunks, "entities": entities, "mentions": rows}
        written = typed_relations(records, pm, settings)
        names = {e["key"]: e.get("name") or e["key"] for e in entities}
        found: dict[tuple[str, str, str], dict[str, Any]] = {}
        for chunk, rel_mentions in relation_mentions(records):
            for rel_type, src, dst, lo, hi, s_lo, s_hi in loose_pairs(chunk["text"], rel_mentions):
                a, b = rel_mentions[src], rel_mentions[dst]
                found.setdefault(
                    (a.key, rel_type, b.key),
                    {
                        "source_text": a.text,
                        "target_text": b.text,
                        "evidence": chunk["text"][lo:hi],
                        "sentence": chunk["text"][s_lo:s_hi],
                    },
                )
        for key, props in written.items():  # the edge's own evidence wins, with what precedes it
            chunk = chunks[props["chunk"]]
            lo, hi = props["start"] - chunk["start"], props["end"] - chunk["start"]
            found.setdefault(key, {"source_text": names[key[0]], "target_text": names[key[2]]})
            found[key]["evidence"] = props["evidence"]
            found[key]["sentence"] = chunk["text"][max(0, lo - 400) : hi + 100]
        for (a, rel_type, b), c in sorted(found.items()):
            edge = written.get((a, rel_type, b))
            out.append(
                {
                    "source_set": source,
                    "text": name,
                    "type": rel_type,
                    "source": a,
                    "target": b,
                    **c,
                    "written": edge is not None,
                    "confidence": edge["confidence"] if edge else None,
                }
            )
    return out


def load_labels(path: Path) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    labels = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                labels[(row["text"], row["type"], row["source"], row["target"])] = row
    return labels


def verdict(c: dict[str, Any], labels: dict[tuple[str, str, str, str], dict[str, Any]]) -> bool | None:
    row = labels.get((c["text"], c["type"], c["source"], c["target"]))
    return None if row is None or row.get("correct") is None else bool(row["correct"])


def report(found: list[dict[str, Any]], labels: dict[tuple[str, str, str, str], dict[str, Any]]) -> list[str]:
    """Table lines per text set and per type: candidates and written edges labelled,
    the precision of each, and the share of the right candidates that are written."""
    by: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for c in found:
        v = verdict(c, labels)
        for key in ((c["source_set"], "all"), ("all", c["type"]), ("all", "all")):
            n = by[key]
            n["candidates"] += 1
            n["written"] += c["written"]
            if v is not None:
                n["labelled"] += 1
                n["right"] += v
                if c["written"]:
                    n["written_labelled"] += 1
                    n["written_right"] += v

    def ratio(a: int, b: int) -> str:
        return f"{a / b:.3f}" if b else "-"

    head = (
        f"{'texts':<12} {'type':<14} {'candidates':>10} {'labelled':>8} {'right':>6} {'cand. prec.':>11} "
        f"{'written':>7} {'w. right':>8} {'PRECISION':>9} {'recall':>6}"
    )
    lines = [head, "-" * len(head)]
    for (source, rel_type), n in sorted(by.items(), key=lambda kv: (kv[0][0] == "all", kv[0])):
        lines.append(
            f"{source:<12} {rel_type:<14} {n['candidates']:>10} {n['labelled']:>8} {n['right']:>6} "
            f"{ratio(n['right'], n['labelled']):>11} {n['written']:>7} {n['written_right']:>8} "
            f"{ratio(n['written_right'], n['written_labelled']):>9} {ratio(n['written_right'], n['right']):>6}"
        )
    unlabelled = sum(verdict(c, labels) is None for c in found)
    lines.append(
        f"PRECISION: right / labelled among the edges ingest writes (min_confidence applied); "
        f"recall: written right / right candidates; {unlabelled} candidates unlabelled"
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--labels", type=Path, default=LABELS, help="the hand-labelled candidates (JSON lines)"
    )
    parser.add_argument("--cyner-valid", type=Path, default=CYNER_VALID, help="CyNER's valid split (CoNLL)")
    parser.add_argument(
        "--unlabelled", type=Path, help="write the edges the labelled file has no verdict for here, to label"
    )
    parser.add_argument("--json", type=Path, help="write every edge with its verdict here")
    args = parser.parse_args(argv)

    found = candidates(texts(args.cyner_valid))
    labels = load_labels(args.labels)
    print("\n".join(report(found, labels)))
    missing = [c for c in found if verdict(c, labels) is None]
    if args.unlabelled:
        with args.unlabelled.open("w", encoding="utf-8") as f:
            for c in missing:
                row = {k: v for k, v in c.items() if k not in ("written", "confidence")}  # labelled blind
                f.write(json.dumps({**row, "correct": None, "why": ""}, ensure_ascii=False) + "\n")
        print(f"{len(missing)} unlabelled edges written to {args.unlabelled}")
    if args.json:
        rows = [
            {**c, "correct": labels.get((c["text"], c["type"], c["source"], c["target"]), {}).get("correct")}
            for c in found
        ]
        args.json.write_text(json.dumps(rows, indent=1, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
