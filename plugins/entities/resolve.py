"""Entity resolution: a mention (text + NER label) -> the one canonical entity it names.

Resolved mentions key their node by the alias entries' ``id`` (``attack:G0007``);
the rest by ``<label>:<canonical text>`` (:func:`normalize.canonical`), so
``hxxp://Evil[.]com/A`` and ``http://evil.com/A`` are one Indicator either way.

Context rules (what makes ``Sofacy`` the group, not the malware), per tier —
the user's alias file first, then every pack; a tier with any candidate decides:

1. an alias matches its case-folded name, or exactly (ID, ``case_sensitive``);
2. candidates whose ``mention_labels`` hold the mention's label (or are empty)
   fit; exactly one entity among them resolves;
3. if none fits, one entity among the candidates that do not ``require_label``
   resolves anyway (``APT28`` mislabelled ``System`` is still APT28) — never
   for Indicator / Vulnerability mentions, which are values, not names;
4. several entities left: the mention stays unresolved (its own node).
"""

from __future__ import annotations

import csv
import io
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docgraph.core.errors import ConfigError
from docgraph.plugins.entities.normalize import VALUE_LABELS, canonical, canonical_id, clean_name
from docgraph.plugins.types import AliasEntry

MEMO_SIZE = 100_000


@dataclass(frozen=True)
class Candidate:
    entry: AliasEntry
    tier: int  # 0: the user's file, 1: packs
    exact: str  # the alias, cleaned (compared when case-sensitive)


@dataclass
class Entity:
    """A canonical node: what ingest MERGEs (``key``) and SETs (``properties``)."""

    key: str
    label: str
    name: str
    properties: dict[str, Any] = field(default_factory=dict)
    resolved: bool = False

    def row(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "name": self.name, "props": self.properties}


def _lookup(text: str) -> tuple[str, str]:
    """``(folded, exact)`` forms of a mention or alias text for the index."""
    cleaned = clean_name(text)
    ident = canonical_id(cleaned)
    if ident is not None:
        return ident, ident
    return cleaned.casefold(), cleaned


class Resolver:
    """Built once per process from alias entries; :meth:`resolve` is a dictionary lookup."""

    def __init__(self, packs: Iterable[AliasEntry], user: Iterable[AliasEntry] = ()) -> None:
        self._index: dict[str, list[Candidate]] = defaultdict(list)
        self._memo: dict[tuple[str, str], Entity] = {}  # (text, label) -> entity: names repeat
        self._entities: dict[str, Entity] = {}
        aliases: dict[str, dict[str, None]] = defaultdict(dict)
        for tier, entries in ((0, user), (1, packs)):
            for e in entries:
                key = entity_id(e)
                if key not in self._entities:  # the first entry of an id names and labels it
                    props: dict[str, Any] = {"name": e.canonical, **e.properties}
                    if e.attack_id:
                        props["attack_id"] = e.attack_id
                    self._entities[key] = Entity(key, e.label, e.canonical, props, resolved=True)
                    aliases[key][e.canonical] = None
                else:  # a user's entry for an ATT&CK id keeps the pack's properties
                    for name, value in e.properties.items():
                        self._entities[key].properties.setdefault(name, value)
                if e.alias != e.attack_id:
                    aliases[key][clean_name(e.alias)] = None
                folded, exact = _lookup(e.alias)
                self._index[folded].append(Candidate(e, tier, exact))
        for key, names in aliases.items():
            self._entities[key].properties["aliases"] = sorted(names, key=str.casefold)

    def __len__(self) -> int:
        return len(self._entities)

    def entity(self, key: str) -> Entity | None:
        """The canonical entity of an id (``attack:G0007``), if a pack or file declares it."""
        return self._entities.get(key)

    def lookup(self, name: str) -> list[Entity]:
        """Every canonical entity ``name`` is an alias of, whatever its label, the user's
        file first: what someone asking for ``Sofacy`` may mean (a query has no NER label
        to decide, so the caller ranks them)."""
        folded, exact = _lookup(name)
        candidates = sorted(self._index.get(folded, ()), key=lambda c: c.tier)
        keys = dict.fromkeys(
            entity_id(c.entry) for c in candidates if not c.entry.case_sensitive or c.exact == exact
        )
        return [self._entities[k] for k in keys]

    def resolve(self, text: str, label: str) -> Entity:
        """The canonical entity of one mention; unresolved: ``<label>:<canonical text>``."""
        found = self._memo.get((text, label))
        if found is None:
            if len(self._memo) >= MEMO_SIZE:  # bounded: a long-lived worker sees many names
                self._memo.clear()
            found = self._memo[(text, label)] = self._resolve(text, label)
        return found

    def _resolve(self, text: str, label: str) -> Entity:
        folded, exact = _lookup(text)
        candidates = [
            c for c in self._index.get(folded, ()) if not c.entry.case_sensitive or c.exact == exact
        ]
        for tier in (0, 1):
            in_tier = [c for c in candidates if c.tier == tier]
            if not in_tier:
                continue
            fits = {
                entity_id(c.entry)
                for c in in_tier
                if not c.entry.mention_labels or label in c.entry.mention_labels
            }
            if not fits and label not in VALUE_LABELS:
                fits = {entity_id(c.entry) for c in in_tier if not c.entry.require_label}
            if len(fits) == 1:
                return self._entities[fits.pop()]
            if len(fits) > 1:
                break  # ambiguous in its tier: a lower tier does not get to guess
        display, part = canonical(text, label)
        return Entity(f"{label}:{part}", label, display)


def entity_id(entry: AliasEntry) -> str:
    """The node key an alias entry resolves to."""
    if entry.id:
        return entry.id
    if entry.attack_id:
        return f"attack:{entry.attack_id.upper()}"
    return f"{entry.label}:{clean_name(entry.canonical).casefold()}"


# ------------------------------------------------------------- the user's file

CSV_COLUMNS = ("alias", "canonical", "label", "attack_id", "mention_labels", "case_sensitive")


def load_alias_file(path: Path) -> list[AliasEntry]:
    """The user's aliases: YAML (a list of ``{canonical, label, aliases, …}``) or CSV
    (one alias a row, header ``alias,canonical,label[,attack_id,mention_labels,case_sensitive]``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"DOCGRAPH_RESOLVE__ALIASES_FILE={path}: cannot read it ({exc})") from None
    try:
        if path.suffix.lower() == ".csv":
            return _from_csv(text)
        if path.suffix.lower() in (".yaml", ".yml"):
            return _from_yaml(text)
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"DOCGRAPH_RESOLVE__ALIASES_FILE={path}: {exc}") from None
    raise ConfigError(f"DOCGRAPH_RESOLVE__ALIASES_FILE={path}: name a .yaml, .yml or .csv file")


def _labels(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(v.strip() for v in value.replace(";", ",").split(",") if v.strip())
    return tuple(value or ())


def _from_csv(text: str) -> list[AliasEntry]:
    reader = csv.DictReader(io.StringIO(text))
    missing = {"alias", "canonical", "label"} - set(reader.fieldnames or ())
    if missing:
        raise ValueError(f"the CSV header lacks {sorted(missing)} (columns: {', '.join(CSV_COLUMNS)})")
    out = []
    for line, row in enumerate(reader, start=2):
        try:
            out.append(
                AliasEntry(
                    alias=row["alias"],
                    canonical=row["canonical"],
                    label=row["label"],
                    attack_id=(row.get("attack_id") or "").strip().upper() or None,
                    mention_labels=_labels(row.get("mention_labels")),
                    case_sensitive=(row.get("case_sensitive") or "").strip().lower() in ("1", "true", "yes"),
                )
            )
        except ValueError as exc:
            raise ValueError(f"line {line}: {exc}") from None
    return out


def _from_yaml(text: str) -> list[AliasEntry]:
    import yaml

    data = yaml.safe_load(text) or []
    if not isinstance(data, list):
        raise ValueError("the YAML must be a list of entities ({canonical, label, aliases: [...]})")
    out = []
    for i, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            raise ValueError(f"entry {i} is not a mapping")
        names: Sequence[str] = [item["canonical"], *(item.get("aliases") or [])]
        common = {
            "canonical": item["canonical"],
            "label": item["label"],
            "id": item.get("id") or "",
            "attack_id": str(item["attack_id"]).upper() if item.get("attack_id") else None,
            "mention_labels": _labels(item.get("mention_labels")),
            "case_sensitive": bool(item.get("case_sensitive", False)),
            "require_label": bool(item.get("require_label", False)),
            "properties": item.get("properties") or {},
        }
        try:
            out += [AliasEntry(alias=str(name), **common) for name in names]
        except ValueError as exc:
            raise ValueError(f"entry {i} ({item['canonical']!r}): {exc}") from None
    return out


# ------------------------------------------------------------ one per process

_lock = threading.Lock()
_cache: dict[tuple[Any, ...], Resolver] = {}


def resolver_for(settings: Any, plugins: Any) -> Resolver:
    """The process's resolver for these settings and plugins: alias packs
    (``docgraph_entity_aliases``) and the user's file, built on first use and
    again when the file changes."""
    resolve = settings.resolve
    path = resolve.aliases_file
    try:
        stamp = path.stat().st_mtime_ns if path is not None else None
    except OSError:
        stamp = None  # load_alias_file reports it
    key = (id(plugins), str(path), stamp, resolve.attack)
    with _lock:
        found = _cache.get(key)
        if found is None:
            hook = getattr(plugins.hook, "docgraph_entity_aliases", None)
            packs = [e for group in (hook(settings=settings) if hook else []) for e in group or ()]
            user = load_alias_file(path) if path is not None else []
            found = Resolver(packs, user)
            _cache.clear()  # settings or the file changed: the old one is stale
            _cache[key] = found
        return found
