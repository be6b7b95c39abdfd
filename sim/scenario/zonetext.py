"""Zone text as a scenario gives it, with mistakes named at their line.

dnspython parses zone text well but explains a mistake as
``<string>:4: Text input is malformed.`` (a line number in a text the user
never saw, after the ``$TTL`` line the simulated DNS prepends).  When the
zones do not parse, :func:`parse_zones` finds the first line that fails
on its own and says what is wrong with it in the user's terms
(``'198.51.100' is not an IPv4 address``), with the line number counted in
the scenario's ``zones`` text.
"""
from __future__ import annotations

import ipaddress

import dns.exception
import dns.rdatatype
import dns.zone

from sim.world.zones import DEFAULT_TTL, ZoneSet

#: ``[(message, line)]``: the line is 1-based within the zone text, or None.
ZoneProblems = list[tuple[str, "int | None"]]


def parse_zones(text: str) -> tuple[ZoneSet | None, ZoneProblems]:
    """The zones of ``text`` as the simulated DNS serves them, and ``[]``;
    or None and why they cannot be served.  (The zones are parsed once: a
    world of a thousand domains spends most of its validation here.)"""
    try:
        zones = ZoneSet.from_text(text)
    except ValueError as exc:
        return None, _diagnose(text) or [(f"expected valid zone-file text: {exc}", None)]
    if not zones.origins:
        return None, [("expected zone-file text with at least one $ORIGIN line", None)]
    return zones, []


def _diagnose(text: str) -> ZoneProblems:
    origin = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split(";", 1)[0].rstrip()
        tokens = line.split()
        if not tokens:
            continue
        head = tokens[0].upper()
        if head == "$ORIGIN":
            origin = tokens[1] if len(tokens) > 1 else None
            if origin is None:
                return [("$ORIGIN needs a domain name", n)]
            continue
        if head.startswith("$"):
            continue
        if origin is None:
            return [(f"a record before any $ORIGIN line: {raw.strip()!r}", n)]
        if "(" in line:
            return []   # a record over several lines: dnspython's own message
        try:
            dns.zone.from_text(f"$TTL {DEFAULT_TTL}\n{raw}\n", origin=origin,
                               relativize=False, check_origin=False)
        except dns.exception.DNSException as exc:
            return [(_explain(raw, tokens, exc), n)]
    return []


def _explain(raw: str, tokens: list[str], exc: Exception) -> str:
    """A plain explanation of why one record line does not parse."""
    for i, tok in enumerate(tokens[1:], 1):
        try:
            rdtype = dns.rdatatype.from_text(tok.upper())
        except dns.rdatatype.UnknownRdatatype:
            continue
        if tok.upper() in ("IN", "CH", "HS") or tok.isdigit():
            continue
        data = " ".join(tokens[i + 1:])
        name = dns.rdatatype.to_text(rdtype)
        if name in ("A", "AAAA"):
            version = 4 if name == "A" else 6
            try:
                ipaddress.ip_address(data)
            except ValueError:
                return f"{data!r} is not an IPv{version} address (in {raw.strip()!r})"
        if name == "MX" and (len(tokens) - i - 1 != 2 or not tokens[i + 1].isdigit()):
            return f"an MX record needs a preference and a host name, got {data!r}"
        return f"{name} record {data!r}: {str(exc).rstrip('.').lower()}"
    return f"expected a record type (A, AAAA, MX, CNAME, TXT, ...) in {raw.strip()!r}"
