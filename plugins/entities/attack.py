"""The MITRE ATT&CK alias pack: groups, software, campaigns, ICS assets and techniques.

The data (ATT&CK v18.1, names and IDs only, MITRE's licence in
``data/attack/LICENSE.txt``) ships inside the package and is read with
:mod:`importlib.resources`, never from outside it.

Every name and alias of an object is an :class:`AliasEntry` of one node
``attack:<ID>``; the ID itself (``G0007``, ``T1059.001``) is one more alias,
case-sensitive.  Names in ``data/attack/ambiguous.txt`` (``Ping``, ``at``,
``Page``: 3 characters or fewer, or a common English word) are weak evidence:
they resolve only when written exactly so and labelled by NER as what they are.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from importlib import resources
from typing import Any

from docgraph.plugins.hookspecs import hookimpl
from docgraph.plugins.types import AliasEntry

#: ATT&CK object type -> (graph label, NER labels a mention of it may carry)
TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "group": ("Group", ("Organization", "AttackGroup")),
    "campaign": ("Campaign", ("Organization",)),
    "malware": ("Malware", ("Malware", "AttackSoftware")),
    "tool": ("Tool", ("Malware", "System", "AttackSoftware")),
    "ics_asset": ("Asset", ("System",)),
    "technique": ("Technique", ("AttackTechnique",)),
}
#: the NER rule label of each ID prefix (``S0002`` -> AttackSoftware)
ID_LABELS = {"G": "AttackGroup", "S": "AttackSoftware", "T": "AttackTechnique"}


def _rows(name: str) -> list[dict[str, str]]:
    text = resources.files("docgraph.plugins.entities").joinpath("data", "attack", name).read_text("utf-8")
    return list(csv.DictReader(text.splitlines(), delimiter="\t"))


def ambiguous_names() -> frozenset[str]:
    """The names that resolve only case-sensitively and with a fitting NER label."""
    text = resources.files("docgraph.plugins.entities").joinpath("data", "attack", "ambiguous.txt")
    lines = text.read_text("utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def _entry(alias: str, row: dict[str, str], kind: str, props: dict[str, Any], weak: bool) -> AliasEntry:
    label, mention_labels = TYPES[kind]
    is_id = alias == row["attack_id"]
    if is_id:
        mention_labels = (ID_LABELS.get(alias[0], label), *mention_labels)
    return AliasEntry(
        alias=alias,
        canonical=row.get("canonical") or row["name"],
        label=label,
        id=f"attack:{row['attack_id']}",
        attack_id=row["attack_id"],
        mention_labels=mention_labels,
        case_sensitive=is_id or weak,
        require_label=weak and not is_id,
        properties=props,
    )


#: group names' suffixes reports often drop ("Sandworm" for Sandworm Team)
GROUP_SUFFIXES = (" Team", " Group")
#: short forms that are a place, a word or another thing's name first
SHORT_FORMS_LEFT_OUT = frozenset({"Beijing", "Comment", "Tsar", "Cobalt"})


def short_forms(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    """Short form -> group row, for group names ending in " Team" or " Group" whose rest
    (4+ characters) is no ATT&CK name itself.  Weak evidence, like ``ambiguous.txt``:
    they resolve only written so and labelled Organization by NER."""
    names = {r["name"].casefold() for r in rows}
    out = {}
    for row in rows:
        for suffix in GROUP_SUFFIXES if row["type"] == "group" else ():
            short = row["name"].removesuffix(suffix)
            if short != row["name"] and len(short) >= 4 and short.casefold() not in names:
                if short not in SHORT_FORMS_LEFT_OUT:
                    out[short] = row
    return out


@lru_cache(maxsize=1)
def attack_entries() -> tuple[AliasEntry, ...]:
    """Every ATT&CK alias as an entry (cached: built once per process)."""
    weak = ambiguous_names()
    out: list[AliasEntry] = []
    seen_ids: set[str] = set()
    rows = _rows("gazetteer.tsv")
    short_of = {id(row): short for short, row in short_forms(rows).items()}  # one per group name
    for row in rows:
        props: dict[str, Any] = {"attack_type": row["type"], "domains": row["domain"].split(",")}
        out.append(_entry(row["name"], row, row["type"], props, row["name"] in weak))
        if id(row) in short_of:
            out.append(_entry(short_of[id(row)], row, row["type"], props, True))
        if row["attack_id"] not in seen_ids:
            seen_ids.add(row["attack_id"])
            out.append(_entry(row["attack_id"], row, row["type"], props, False))
    for row in _rows("techniques.tsv"):
        props = {
            "attack_type": "technique",
            "domains": row["domain"].split(","),
            "tactics": [t for t in row["tactics"].split(",") if t],
        }
        row = {**row, "canonical": row["name"]}
        out.append(_entry(row["attack_id"], row, "technique", props, False))
    return tuple(out)


#: ATT&CK tools that are admin software first: the NER pack matches them as System
#: (stages/ner/pack.py SYSTEM_TERMS), and they leave the Malware gazetteer
ADMIN_TOOLS = (
    "PsExec",
    "AdFind",
    "Rclone",
    "ScreenConnect",
    "ConnectWise",
    "Quick Assist",
    "RemoteUtilities",
    "BITSAdmin",
    "Nltest",
    "SDelete",
    "ngrok",
    "certutil",
)
#: every ATT&CK tool kept out of the Malware gazetteer as dual-use (lower-case commands,
#: ``netsh`` and the like, are out already: a tool needs a capital)
DUAL_USE_TOOLS = frozenset(
    {*ADMIN_TOOLS, "Forfiles", "Tasklist", "Systeminfo", "Wevtutil", "NBTscan", "Winexe", "Expand"}
)


@lru_cache(maxsize=1)
def group_names() -> tuple[str, ...]:
    """ATT&CK group names, aliases and short forms safe to match as words (the NER pack's
    actor gazetteer, Organization as CyNER labels actors): not ambiguous, 4 characters
    or more, not also the name of malware, a tool, a campaign or an asset."""
    weak = {n.casefold() for n in ambiguous_names()}
    rows = _rows("gazetteer.tsv")
    other = {r["name"].casefold() for r in rows if r["type"] != "group"}
    names = {r["name"] for r in rows if r["type"] == "group"} | set(short_forms(rows))
    return tuple(sorted(n for n in names if len(n) >= 4 and n.casefold() not in weak | other))


@lru_cache(maxsize=1)
def software_names() -> tuple[str, ...]:
    """ATT&CK malware and tool names and aliases safe to match as words (the NER pack's
    gazetteer): not ambiguous (``ambiguous.txt``), 4 characters or more, not also the
    name of a group, campaign or asset (``Sofacy``); tools only when written with a
    capital (``Mimikatz``, ``PsExec``; not ``netsh``, ``ipconfig``, ``at.exe``: commands
    the text names as commands, not as software of interest)."""
    weak = {n.casefold() for n in ambiguous_names()}
    rows = _rows("gazetteer.tsv")
    kinds = ("malware", "tool")
    weak |= {n.casefold() for n in DUAL_USE_TOOLS}
    other = {r["name"].casefold() for r in rows if r["type"] not in kinds}
    names = {
        r["name"]
        for r in rows
        if r["type"] in kinds
        and len(r["name"]) >= 4
        and r["name"].casefold() not in weak | other
        and (r["type"] == "malware" or (r["name"] != r["name"].lower() and not r["name"].endswith(".exe")))
    }
    return tuple(sorted(names))


@hookimpl
def docgraph_entity_aliases(settings: Any) -> list[AliasEntry]:
    """The ATT&CK pack, unless ``DOCGRAPH_RESOLVE__ATTACK=false``."""
    resolve = getattr(settings, "resolve", None)
    if resolve is not None and not resolve.attack:
        return []
    return list(attack_entries())
