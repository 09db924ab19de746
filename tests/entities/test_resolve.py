"""Resolution on the shipped ATT&CK data: aliases to one entity, ambiguous names only in context."""

from __future__ import annotations

from pathlib import Path

import pytest

from docgraph.core.errors import ConfigError
from docgraph.core.settings import Settings
from docgraph.plugins.entities import attack
from docgraph.plugins.entities.resolve import Resolver, load_alias_file, resolver_for
from docgraph.plugins.manager import load_plugins
from docgraph.plugins.types import AliasEntry

SHARED = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "attack"


@pytest.fixture(scope="module")
def resolver() -> Resolver:
    return Resolver(attack.attack_entries())


def test_the_shipped_data_is_the_dataset_with_its_licence():
    data = Path(attack.__file__).parent / "data" / "attack"
    for name in ("gazetteer.tsv", "techniques.tsv", "LICENSE.txt"):
        assert (data / name).read_bytes() == (SHARED / name).read_bytes(), name
    assert "The MITRE Corporation" in (data / "LICENSE.txt").read_text()
    weak = attack.ambiguous_names()
    assert len(weak) == 136  # the count the dataset's README gives
    assert {"Ping", "at", "Page", "Net", "Snake", "cmd", "Tor"} <= weak


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("APT28", "Organization"),
        ("Fancy Bear", "Organization"),
        ("fancy  bear", "Organization"),
        ("Sofacy", "Organization"),
        ("STRONTIUM", "Organization"),
        ("G0007", "AttackGroup"),
        ("APT28", "System"),  # a distinctive name the model mislabelled is still APT28
    ],
)
def test_every_alias_of_apt28_is_one_group(resolver, text, label):
    e = resolver.resolve(text, label)
    assert (e.key, e.label, e.name) == ("attack:G0007", "Group", "APT28")
    assert e.properties["attack_id"] == "G0007"
    assert {"APT28", "Fancy Bear", "Sofacy", "Sednit", "STRONTIUM"} <= set(e.properties["aliases"])
    assert "G0007" not in e.properties["aliases"]


def test_a_group_named_without_its_team_or_group_suffix(resolver):
    # "Sandworm", "Lazarus": what reports write for Sandworm Team, Lazarus Group
    assert resolver.resolve("Sandworm", "Organization").key == "attack:G0034"
    assert resolver.resolve("Lazarus", "Organization").key == "attack:G0032"
    assert "Sandworm" in resolver.resolve("Sandworm Team", "Organization").properties["aliases"]
    # weak evidence: only written so and labelled as an actor; places and words stay out
    assert resolver.resolve("sandworm", "Organization").key == "Organization:sandworm"
    assert resolver.resolve("Lazarus", "Malware").key == "Malware:lazarus"
    assert resolver.resolve("Beijing", "Organization").key == "Organization:beijing"


def test_software_and_techniques(resolver):
    mimikatz = resolver.resolve("mimikatz", "Malware")
    assert (mimikatz.key, mimikatz.label) == ("attack:S0002", "Tool")
    assert resolver.resolve("S0002", "AttackSoftware").key == "attack:S0002"
    assert resolver.resolve("BlackEnergy", "Malware").properties["attack_id"] == "S0089"
    t = resolver.resolve("T1059.001", "AttackTechnique")
    assert (t.key, t.label, t.name) == ("attack:T1059.001", "Technique", "PowerShell")
    assert t.properties["tactics"] == ["execution"]
    multi = resolver.resolve("T0839", "AttackTechnique")
    assert multi.properties["tactics"] == ["persistence", "impair-process-control"]
    assert resolver.resolve("T9999", "AttackTechnique").key == "AttackTechnique:T9999"


def test_a_name_of_two_entities_follows_the_ner_label(resolver):
    assert resolver.resolve("Sofacy", "Organization").key == "attack:G0007"  # the group
    assert resolver.resolve("Sofacy", "Malware").key == "attack:S0137"  # the malware CORESHELL
    assert resolver.resolve("Sofacy", "System").key == "System:sofacy"  # neither fits: unresolved
    assert resolver.resolve("Snake", "Organization").key == "attack:G0010"  # Turla
    assert resolver.resolve("Snake", "Malware").key == "attack:S0022"  # Uroburos


@pytest.mark.parametrize(
    ("text", "label", "key"),
    [
        ("Ping", "System", "attack:S0097"),  # written as ATT&CK does, labelled as a tool may be
        ("ping", "System", "System:ping"),  # the verb
        ("Ping", "Organization", "Organization:ping"),  # a tool is no organisation
        ("Page", "Malware", "attack:S0081"),  # Elise's alias
        ("page", "Malware", "Malware:page"),
        ("at", "System", "attack:S0110"),
        ("At", "System", "System:at"),
        ("snake", "Malware", "Malware:snake"),
        ("Net", "Organization", "Organization:net"),
    ],
)
def test_ambiguous_names_need_their_exact_case_and_a_fitting_label(resolver, text, label, key):
    assert resolver.resolve(text, label).key == key


def test_values_are_normalised_and_never_taken_for_names(resolver):
    assert resolver.resolve("hxxp://Evil[.]com/A", "Indicator").key == "Indicator:http://evil.com/A"
    assert resolver.resolve("http://evil.com/A", "Indicator").key == "Indicator:http://evil.com/A"
    assert resolver.resolve("cve-2021-44228", "Vulnerability").key == "Vulnerability:CVE-2021-44228"
    assert resolver.resolve("Turla", "Indicator").key == "Indicator:turla"  # never resolved as a name


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_user_yaml_adds_entities_and_aliases_of_attack_ids(tmp_path):
    path = _write(
        tmp_path,
        "aliases.yaml",
        """
- canonical: Midnight Penguin
  label: Group
  aliases: [COBALT OTTER, Frosty Spider]
  mention_labels: [Organization]
  require_label: true
- canonical: APT28
  label: Group
  attack_id: g0007
  aliases: [Blue Athena]
- canonical: Acme SCADA
  label: System
  aliases: [AcmeView]
""",
    )
    user = load_alias_file(path)
    r = Resolver(attack.attack_entries(), user)
    apt28 = r.resolve("Blue Athena", "Organization")
    assert apt28.key == "attack:G0007"
    assert {"Blue Athena", "Fancy Bear"} <= set(apt28.properties["aliases"])
    assert apt28.properties["attack_type"] == "group"  # the pack's properties are kept
    penguin = r.resolve("frosty  spider", "Organization")
    assert (penguin.key, penguin.label, penguin.name) == (
        "Group:midnight penguin",
        "Group",
        "Midnight Penguin",
    )
    assert penguin.properties["aliases"] == ["COBALT OTTER", "Frosty Spider", "Midnight Penguin"]
    assert r.resolve("Frosty Spider", "Malware").key == "Malware:frosty spider"  # mention_labels say no
    assert r.resolve("AcmeView", "System").key == "System:acme scada"


def test_the_users_file_wins_over_packs(tmp_path):
    path = _write(
        tmp_path,
        "aliases.csv",
        "alias,canonical,label,mention_labels\nSofacy,Sofacy Corp,Organization,Organization\n",
    )
    r = Resolver(attack.attack_entries(), load_alias_file(path))
    assert r.resolve("Sofacy", "Organization").key == "Organization:sofacy corp"
    assert r.resolve("Fancy Bear", "Organization").key == "attack:G0007"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.csv", "name,canonical\nx,y\n", "lacks ['alias', 'label']"),
        ("a.csv", "alias,canonical,label\nx,y,not a label\n", "line 2"),
        ("a.yaml", "canonical: x\n", "must be a list"),
        ("a.yaml", "- canonical: x\n", "label"),
        ("a.json", "[]", "name a .yaml, .yml or .csv file"),
    ],
)
def test_a_bad_alias_file_says_what_is_wrong(tmp_path, name, text, message):
    with pytest.raises(ConfigError, match="DOCGRAPH_RESOLVE__ALIASES_FILE") as info:
        load_alias_file(_write(tmp_path, name, text))
    assert message in str(info.value)


def test_a_plugins_alias_pack_and_the_settings(tmp_path):
    class Pack:
        from docgraph.plugins.hookspecs import hookimpl

        @staticmethod
        @hookimpl
        def docgraph_entity_aliases(settings):
            return [
                AliasEntry(alias=a, canonical="Acme Loader", label="Malware") for a in ("AcmeLoad", "ALDR")
            ]

    settings = Settings(
        resolve={
            "aliases_file": _write(tmp_path, "u.csv", "alias,canonical,label\nBlue Athena,APT28,Group\n")
        }
    )
    loaded = load_plugins(settings)
    assert loaded.manager.get_plugin("aliases-attack") is not None  # the entry point is installed
    loaded.manager.register(Pack())
    r = resolver_for(settings, loaded.manager)
    assert r.resolve("ALDR", "Malware").key == "Malware:acme loader"
    assert r.resolve("Fancy Bear", "Organization").key == "attack:G0007"  # the built-in pack
    assert r.resolve("Blue Athena", "Organization").key == "Group:apt28"  # no attack_id: the user's own node
    assert resolver_for(settings, loaded.manager) is r  # built once
    off = Settings(resolve={"attack": False})
    assert (
        resolver_for(off, loaded.manager).resolve("Fancy Bear", "Organization").key
        == "Organization:fancy bear"
    )
