"""Simulated DNS: answers from ordinary zone-file text, in virtual time.

:class:`SimResolver` implements :class:`mta.dns.resolver.Resolver` from zone text
parsed by dnspython (``dns.zone.from_text``).  Several zones may be loaded,
each under its own origin; a name is answered by the zone whose origin is
its longest suffix, and a name under no zone does not exist.  Every query
costs ``latency`` seconds of loop time, and outages make queries time out
or fail with SERVFAIL during given intervals of loop time.  Because time
comes from ``asyncio.get_running_loop()``, the same resolver costs virtual
time inside the simulated world and real (tiny) time on a real loop.

:class:`~sim.world.zones.ZoneSet` is the answering logic on its own (no
time, no I/O, :mod:`sim.world.zones`); the tests serve it over real UDP
(``tests/helpers/zone_server.py``) to test
:class:`mta.dns.live.LiveResolver` against real DNS packets.

Answers are deterministic: records are sorted, outages are checked in the
order given, and nothing depends on dict or set order.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Iterable, Mapping

import dns.name

from mta.dns.resolver import DnsTimeout, ServFail
from mta.dns.live import RecordResolver
from sim.world.zones import ZoneSet, _absolute, _text, split_zones

#: How long a query waits in a "timeout" outage before DnsTimeout (seconds).
DEFAULT_TIMEOUT = 5.0

TIMEOUT = "timeout"
SERVFAIL = "servfail"
_MODES = (TIMEOUT, SERVFAIL)


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
