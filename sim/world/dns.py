"""Simulated DNS: answers from ordinary zone-file text, in virtual time.

:class:`SimResolver` implements :class:`mta.dns.resolver.Resolver` from zone text
parsed by dnspython (``dns.zone.from_text``).  Several zones may be loaded,
each under its own origin; a name is answered by the zone whose origin is
its longest suffix, and a name under no zone does not exist.  Every query
costs ``latency`` seconds of loop time, and outages make queries time out
or fail with SERVFAIL during given intervals of loop time.  Because time
comes from ``asyncio.get_running_loop()``, the same resolver costs virtual
time inside the simulated world and real (tiny) time on a real loop.

:class:`ZoneSet` is the answering logic on its own (no time, no I/O); the
tests serve it over real UDP (``tests/helpers/zone_server.py``) to test
:class:`mta.dns.live.LiveResolver` against real DNS packets.

Answers are deterministic: records are sorted, outages are checked in the
order given, and nothing depends on dict or set order.
"""
from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Iterable, Mapping

import dns.exception
import dns.name
import dns.node
import dns.rdataclass
import dns.rdatatype
import dns.zone

from mta.dns.resolver import DnsTimeout, NXDomain, ServFail
from mta.dns.live import RecordResolver

#: The default TTL given to records when the zone text sets none ($TTL).
DEFAULT_TTL = 3600
#: How long a query waits in a "timeout" outage before DnsTimeout (seconds).
DEFAULT_TIMEOUT = 5.0
#: CNAME chains longer than this are treated as a server failure (a loop).
MAX_CNAME_HOPS = 8

TIMEOUT = "timeout"
SERVFAIL = "servfail"
_MODES = (TIMEOUT, SERVFAIL)

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


@dataclass(frozen=True)
class Outage:
    """A DNS failure during ``[start, end)`` of loop time.

    ``mode`` is ``"timeout"`` (the query hangs for the resolver's timeout,
    then raises :class:`DnsTimeout`) or ``"servfail"`` (raises
    :class:`ServFail` after the usual latency).  ``target`` limits the
    outage to one name and everything below it (a zone's origin makes it a
    per-zone outage, e.g. a DNS block list that stops answering); ``None``
    means every query.
    """

    start: float
    end: float
    mode: str = TIMEOUT
    target: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in _MODES:
            raise ValueError(f"outage mode must be one of {_MODES}, not {self.mode!r}")
        if not self.end > self.start:
            raise ValueError(f"outage end {self.end} must be after its start {self.start}")

    def covers(self, name: dns.name.Name, now: float) -> bool:
        if not self.start <= now < self.end:
            return False
        return self.target is None or name.is_subdomain(_absolute(self.target))


def _outage(spec: Outage | tuple | list | Mapping) -> Outage:
    """Accept ``Outage``, ``(start, end[, mode[, target]])`` or a mapping."""
    if isinstance(spec, Outage):
        return spec
    if isinstance(spec, Mapping):
        return Outage(**spec)
    return Outage(*spec)


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


class SimResolver(RecordResolver):
    """A :class:`mta.dns.resolver.Resolver` answering from zone text in loop time.

    ``zones`` maps origins to zone text.  ``latency`` (seconds) is spent on
    every query, ``timeout`` in a query that meets a "timeout" outage.
    ``outages`` is a list of :class:`Outage` or ``(start, end, mode[,
    target])`` tuples in loop time.
    """

    def __init__(self, zones: Mapping[str, str] | None = None, *, latency: float = 0.0,
                 timeout: float = DEFAULT_TIMEOUT,
                 outages: Iterable[Outage | tuple | Mapping] = ()) -> None:
        if latency < 0 or timeout < 0:
            raise ValueError("latency and timeout must not be negative")
        self.zoneset = ZoneSet(zones)
        self.latency = float(latency)
        self.timeout = float(timeout)
        self.outages: list[Outage] = [_outage(o) for o in outages]
        #: Queries asked so far, by type (a plain count, for reports).
        self.query_counts: dict[str, int] = {}
        # Query names as dnspython names, by their text: parsing a name
        # costs more than answering it from the zone set's memory.
        self._names: dict[str, dns.name.Name] = {}

    @classmethod
    def from_text(cls, text: str, **options) -> "SimResolver":
        """A resolver from one blob of zones separated by ``$ORIGIN`` lines."""
        return cls(split_zones(text), **options)

    def add_zone(self, origin: str, text: str) -> None:
        self.zoneset.add_zone(origin, text)

    def add_outage(self, start: float, end: float, mode: str = TIMEOUT,
                   target: str | None = None) -> Outage:
        outage = Outage(start, end, mode, target)
        self.outages.append(outage)
        return outage

    async def _rdatas(self, name: str, rdtype: str) -> list:
        qname = self._names.get(name)
        if qname is None:
            qname = self._names[name] = _absolute(name)
        self.query_counts[rdtype] = self.query_counts.get(rdtype, 0) + 1
        now = asyncio.get_running_loop().time()
        for outage in self.outages:
            if outage.covers(qname, now):
                if outage.mode == TIMEOUT:
                    await asyncio.sleep(self.timeout)
                    raise DnsTimeout(f"{_text(qname)} {rdtype}: no answer in {self.timeout:g}s")
                await asyncio.sleep(self.latency)
                raise ServFail(f"{_text(qname)} {rdtype}: SERVFAIL")
        if self.latency:
            await asyncio.sleep(self.latency)
        return self.zoneset.lookup(qname, rdtype)
