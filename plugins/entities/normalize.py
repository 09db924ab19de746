"""Canonical spellings of entity mentions, so one thing written many ways gets one key.

Two kinds of text:

* names (malware, groups, organisations, systems): Unicode NFKC, whitespace
  collapsed; the lookup key is the case-folded form (``"Fancy  BEAR"`` ->
  ``"fancy bear"``), the display name keeps the case it was written in;
* typed values (indicators, vulnerabilities, ATT&CK IDs): refanged first
  (``hxxp``, ``[.]``, ``(.)``, ``[dot]``, ``[:]``, ``[@]``), then written one
  way: IPs and networks by :mod:`ipaddress` (``010.0.0.1`` stays invalid,
  ``2001:DB8::0:1`` -> ``2001:db8::1``), hashes lower-case, CVE/CWE/ATT&CK IDs
  upper-case, domains and the scheme and host of URLs lower-case (a URL's
  path keeps its case: servers may tell it apart), e-mail domains lower-case.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from urllib.parse import urlsplit, urlunsplit

# defanged forms, the bracketed ones with optional inner spaces: "[ . ]", "( dot )"
_REFANG = (
    (re.compile(r"\b(h)(?:xx|\[xx\]|XX|\[XX\])(ps?)\b", re.IGNORECASE), r"\1tt\2"),
    (re.compile(r"\[\s*:\s*\]//|\[://\]"), "://"),
    (re.compile(r"\[\s*(?:\.|dot)\s*\]|\(\s*(?:\.|dot)\s*\)|\{\s*\.\s*\}", re.IGNORECASE), "."),
    (re.compile(r"\[\s*:\s*\]"), ":"),
    (re.compile(r"\[\s*(?:@|at)\s*\]|\(\s*(?:@|at)\s*\)", re.IGNORECASE), "@"),
)
_ID = re.compile(r"^(?:CVE-\d{4}-\d{4,}|CWE-\d+|T\d{4}(?:\.\d{3})?|[GSCMA]\d{4}|TA\d{4})$", re.IGNORECASE)
_HASH = re.compile(r"^(?:[0-9a-f]{32}|[0-9a-f]{40}|[0-9a-f]{64}|[0-9a-f]{128})$", re.IGNORECASE)
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DOMAIN = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{1,62}\.?$", re.IGNORECASE)


def clean_name(text: str) -> str:
    """A name as displayed: NFKC, whitespace collapsed, ends trimmed."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def name_key(text: str) -> str:
    """The lookup form of a name: :func:`clean_name`, case-folded."""
    return clean_name(text).casefold()


_DEFANG_HINT = re.compile(r"[\[({]|xx", re.IGNORECASE)
_IP_CHARS = re.compile(r"^[0-9A-Fa-f:./]+$")


def refang(text: str) -> str:
    """Undo the usual defanging of indicators: ``hxxp://evil[.]com`` -> ``http://evil.com``."""
    if not _DEFANG_HINT.search(text):  # the common case: nothing to undo
        return text
    for pattern, repl in _REFANG:
        text = pattern.sub(repl, text)
    return text


def canonical_ip(text: str) -> str | None:
    """``ipaddress``'s spelling of an address or network (``10.1.2.0/24``), else None."""
    if not _IP_CHARS.match(text):  # cheaper than ipaddress's ValueError
        return None
    try:
        if "/" in text:
            return str(ipaddress.ip_network(text, strict=False))
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def canonical_id(text: str) -> str | None:
    """CVE, CWE and ATT&CK IDs upper-case (``cve-2021-44228`` -> ``CVE-2021-44228``), else None."""
    value = text.strip()
    return value.upper() if _ID.match(value) else None


def canonical_value(text: str) -> str | None:
    """The one spelling of a typed value (ID, IP, hash, URL, e-mail, domain), or None
    when ``text`` is none of these (then it is a name)."""
    value = refang(clean_name(text))
    if " " in value:
        return None
    ident = canonical_id(value)
    if ident is not None:
        return ident
    ip = canonical_ip(value.strip("[]"))
    if ip is not None:
        return ip
    if _HASH.match(value):
        return value.lower()
    if _URL.match(value):
        return _canonical_url(value)
    if _EMAIL.match(value):
        local, _, domain = value.rpartition("@")
        return f"{local}@{domain.lower().rstrip('.')}"
    if _DOMAIN.match(value):
        return value.lower().rstrip(".")
    return None


def _canonical_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:  # a bad port or bracket: keep what was written, scheme lower-cased
        scheme, _, rest = value.partition("://")
        return f"{scheme.lower()}://{rest}"
    ip = canonical_ip(host)
    host = f"[{ip}]" if ip and ":" in ip else (ip or host.rstrip("."))
    netloc = host + (f":{port}" if port is not None else "")
    if parts.username is not None:
        auth = parts.username + (f":{parts.password}" if parts.password is not None else "")
        netloc = f"{auth}@{netloc}"
    return urlunsplit((parts.scheme.lower(), netloc, parts.path, parts.query, parts.fragment))


#: mention labels whose text is a typed value, never a name to look up as an alias
VALUE_LABELS = frozenset({"Indicator", "Vulnerability"})


def canonical(text: str, label: str) -> tuple[str, str]:
    """``(display, key part)`` of a mention: typed values in their one spelling (both
    the same), names as written (whitespace cleaned) and case-folded."""
    value = canonical_value(text)
    if value is not None and (label in VALUE_LABELS or canonical_id(value) or canonical_ip(value)):
        return value, value
    if label in VALUE_LABELS:
        cleaned = refang(clean_name(text))
        return cleaned, cleaned.casefold()
    display = clean_name(text)
    return display, display.casefold()
