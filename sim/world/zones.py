"""Zone text, parsed and answered: the simulated DNS's authoritative data.

:class:`ZoneSet` parses ordinary zone-file text with dnspython
(``dns.zone.from_text``), each zone under its own ``$ORIGIN``, and answers
queries as authoritative servers would, with no time and no I/O.  The
simulated resolver (:class:`sim.world.dns.SimResolver`) answers from it in
loop time; validating a scenario parses its zones with it, without loading
the resolver and asyncio; ``mxsim serve`` and the tests serve it over real
UDP (:mod:`sim.live.zone_server`).

Answers are deterministic: records are sorted and nothing depends on dict
or set order.
"""
from __future__ import annotations

import re
from typing import Mapping

import dns.exception
import dns.name
import dns.node
import dns.rdataclass
import dns.rdatatype
import dns.zone

from mta.dns.resolver import NXDomain, ServFail

#: The default TTL given to records when the zone text sets none ($TTL).
DEFAULT_TTL = 3600
#: CNAME chains longer than this are treated as a server failure (a loop).
MAX_CNAME_HOPS = 8

_ORIGIN_RE = re.compile(r"^\$ORIGIN\s+(\S+)\s*(;.*)?$", re.IGNORECASE)


def _absolute(name: str | dns.name.Name) -> dns.name.Name:
    """A name as an absolute dnspython name (trailing dot optional)."""
    if isinstance(name, dns.name.Name):
        return name if name.is_absolute() else name.concatenate(dns.name.root)
    text = name.strip()
    if not text.endswith("."):
        text += "."
    return dns.name.from_text(text)


def _text(name: dns.name.Name) -> str:
    """Lower-case text without the trailing dot; the root stays ``"."``."""
    return name.to_text(omit_final_dot=True).lower()


class ZoneSet:
    """Zones parsed from text, answering queries like authoritative servers.

    ``lookup(name, rdtype)`` returns the sorted rdatas, ``[]`` for a name
    that exists without that type (including empty non-terminals, RFC 8020),
    and raises :class:`NXDomain` for a name that does not exist.  Simple
    wildcards (``*.zone``, RFC 4592) and in-zone CNAME chains are followed.
    """

    def __init__(self, zones: Mapping[str, str] | None = None) -> None:
        self._zones: dict[dns.name.Name, dns.zone.Zone] = {}
        # Answers already given, by (query name, type): the sorted rdatas,
        # or the NXDOMAIN message.  Zones change only through add_zone, which
        # clears it; a world of 100 domains asks the same few hundred
        # questions tens of thousands of times (one MX and one A query per
        # delivery attempt), and answering from the zone objects (sorting
        # by text included) was a tenth of its simulation time.
        self._answers: dict[tuple[dns.name.Name, str], list | str] = {}
        for origin in sorted(zones or {}):
            self.add_zone(origin, zones[origin])

    @classmethod
    def from_text(cls, text: str) -> "ZoneSet":
        """Zones from one text blob; each ``$ORIGIN`` line starts a zone."""
        return cls(split_zones(text))

    def add_zone(self, origin: str, text: str) -> None:
        """Add (or replace) the zone at ``origin`` from zone-file text."""
        name = _absolute(origin)
        if "$TTL" not in text.upper():
            # Scenario zones rarely bother with TTLs; dnspython insists on one.
            text = f"$TTL {DEFAULT_TTL}\n{text}"
        try:
            zone = dns.zone.from_text(text, origin=name, relativize=False, check_origin=False)
        except dns.exception.DNSException as exc:
            raise ValueError(f"zone {_text(name)}: {exc}") from exc
        self._zones[name] = zone
        self._answers.clear()

    @property
    def origins(self) -> list[str]:
        return sorted(_text(o) for o in self._zones)

    def zone_for(self, name: dns.name.Name) -> dns.zone.Zone | None:
        """The zone whose origin is the longest suffix of ``name``.

        Walks up ``name``'s labels and looks each suffix up (zone origins
        are dict keys; dnspython names compare case-insensitively): a few
        dict lookups per query instead of a scan of every zone, which made
        a world of 1,000 domains spend a quarter of its time here."""
        for i in range(len(name.labels)):
            zone = self._zones.get(dns.name.Name(name.labels[i:]))
            if zone is not None:
                return zone
        return None

    def lookup(self, name: str | dns.name.Name, rdtype: str) -> list:
        """Rdatas of ``rdtype`` at ``name``, sorted; see the class docstring."""
        qname = _absolute(name)
        key = (qname, rdtype)
        answer = self._answers.get(key)
        if answer is None:
            try:
                answer = self._answer(qname, rdtype)
            except NXDomain as exc:
                answer = str(exc)
            self._answers[key] = answer
        if isinstance(answer, str):
            raise NXDomain(answer)
        return list(answer)          # the caller's own list; rdatas are immutable

    def _answer(self, qname: dns.name.Name, rdtype: str) -> list:
        """:meth:`lookup` from the zone objects (no memory)."""
        want = dns.rdatatype.from_text(rdtype)
        for _hop in range(MAX_CNAME_HOPS):
            zone = self.zone_for(qname)
            if zone is None:
                raise NXDomain(_text(qname))
            node = self._node(zone, qname)
            if node is None:
                raise NXDomain(_text(qname))
            rds = node.get_rdataset(dns.rdataclass.IN, want)
            if rds is not None:
                return sorted(rds, key=lambda rd: rd.to_text())
            cname = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.CNAME)
            if cname is None or want == dns.rdatatype.CNAME:
                return []  # the name exists, without this type: NODATA
            qname = next(iter(cname)).target
        raise ServFail(f"CNAME chain longer than {MAX_CNAME_HOPS} at {_text(qname)}")

    @staticmethod
    def _node(zone: dns.zone.Zone, qname: dns.name.Name):
        """The node answering ``qname``, an empty node for an empty
        non-terminal, a wildcard's node, or None (the name does not exist)."""
        node = zone.get_node(qname)
        if node is not None:
            return node
        names = sorted(zone.nodes)
        if any(n.is_subdomain(qname) for n in names):
            return dns.node.Node()  # empty non-terminal: exists, no data
        # Closest encloser: the longest existing ancestor; its wildcard answers.
        parent = qname.parent()
        while parent.is_subdomain(zone.origin):
            if parent == zone.origin or any(n.is_subdomain(parent) for n in names):
                return zone.get_node(dns.name.Name((b"*",) + parent.labels))
            parent = parent.parent()
        return None


def split_zones(text: str) -> dict[str, str]:
    """Split a blob on ``$ORIGIN`` lines into ``{origin: zone text}``.

    Lines before the first ``$ORIGIN`` may only be blank, comments or
    ``$TTL`` (which then applies to every zone).  An origin given twice has
    its texts joined.
    """
    zones: dict[str, list[str]] = {}
    prelude: list[str] = []
    current: list[str] | None = None
    for lineno, line in enumerate(text.splitlines(), 1):
        m = _ORIGIN_RE.match(line.strip())
        if m:
            origin = _text(_absolute(m.group(1)))
            current = zones.setdefault(origin, list(prelude))
            continue
        if current is None:
            stripped = line.strip()
            if stripped and not stripped.startswith(";") and not stripped.upper().startswith("$TTL"):
                raise ValueError(f"zone text line {lineno}: record before any $ORIGIN: {stripped!r}")
            if stripped.upper().startswith("$TTL"):
                prelude.append(line)
            continue
        current.append(line)
    return {origin: "\n".join(lines) + "\n" for origin, lines in zones.items()}
