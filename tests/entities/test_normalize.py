"""Normalisation before keying: one spelling per name, indicator and ID."""

from __future__ import annotations

import pytest

from docgraph.plugins.entities.normalize import (
    canonical,
    canonical_id,
    canonical_ip,
    canonical_value,
    clean_name,
    name_key,
    refang,
)


def test_names_collapse_whitespace_and_fold_case_for_the_key_only():
    assert clean_name("  Fancy \n\t Bear ") == "Fancy Bear"
    assert name_key("Fancy  BEAR") == name_key("fancy bear") == "fancy bear"
    assert clean_name("\uff26\uff41\uff4e\uff43\uff59 Bear") == "Fancy Bear"  # NFKC: full-width letters
    assert canonical("Lazarus  Group", "Organization") == ("Lazarus Group", "lazarus group")


@pytest.mark.parametrize(
    ("defanged", "refanged"),
    [
        ("hxxp://evil[.]com/x", "http://evil.com/x"),
        ("hXXps://evil(.)com", "https://evil.com"),
        ("h[xx]p://a[.]b[.]ru", "http://a.b.ru"),
        ("http[:]//evil[dot]com", "http://evil.com"),
        ("http[://]evil.com", "http://evil.com"),
        ("evil[ . ]com", "evil.com"),
        ("10[.]0[.]0[.]1", "10.0.0.1"),
        ("user[@]mail[.]ru", "user@mail.ru"),
        ("user[at]mail.ru", "user@mail.ru"),
        ("fe80[:]:1", "fe80::1"),
    ],
)
def test_refang(defanged, refanged):
    assert refang(defanged) == refanged


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("cve-2021-44228", "CVE-2021-44228"),
        ("Cwe-79", "CWE-79"),
        ("t1059.001", "T1059.001"),
        ("g0007", "G0007"),
        ("s0002", "S0002"),
        ("ta0002", "TA0002"),
        ("APT28", None),
        ("T1059.1", None),
    ],
)
def test_ids_upper_case(text, value):
    assert canonical_id(text) == value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2001:DB8:0:0::0:1", "2001:db8::1"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("10.1.2.3/24", "10.1.2.0/24"),
        ("192.168.001.1", None),  # leading zeros: ambiguous (octal?), ipaddress refuses it
        ("256.1.1.1", None),
    ],
)
def test_ips_canonical(text, value):
    assert canonical_ip(text) == value


@pytest.mark.parametrize(
    ("text", "label", "key"),
    [
        ("D41D8CD98F00B204E9800998ECF8427E", "Indicator", "d41d8cd98f00b204e9800998ecf8427e"),
        (
            "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "Indicator",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        ("hxxp://Evil[.]COM:8080/Path/A?q=B", "Indicator", "http://evil.com:8080/Path/A?q=B"),
        ("HTTP://[2001:DB8::1]/x", "Indicator", "http://[2001:db8::1]/x"),
        ("Evil[.]Com.", "Indicator", "evil.com"),
        ("Admin@Evil[.]COM", "Indicator", "Admin@evil.com"),
        ("10[.]0[.]0[.]1", "Indicator", "10.0.0.1"),
        ("cve-2014-0160", "Vulnerability", "CVE-2014-0160"),
        ("t1059.001", "AttackTechnique", "T1059.001"),
        ("ASP.NET", "System", "asp.net"),  # a name that looks like a domain stays a name
    ],
)
def test_canonical_keys(text, label, key):
    assert canonical(text, label)[1] == key


def test_one_address_written_two_ways_is_one_key():
    # ipaddress's own spelling, whatever the Python version prints for mapped IPv4
    assert canonical_ip("::FFFF:10.0.0.1") == canonical_ip("0:0:0:0:0:ffff:a00:1")


def test_values_and_names_are_told_apart():
    assert canonical_value("Fancy Bear") is None
    assert canonical_value("Sofacy") is None
    assert canonical("ASP.NET", "System") == ("ASP.NET", "asp.net")
    assert canonical("10.0.0.1", "System") == ("10.0.0.1", "10.0.0.1")  # an IP is an IP whatever the label
