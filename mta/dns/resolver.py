"""The resolver interface components use instead of real DNS.

Components never call dnspython or ``getaddrinfo`` for mail routing: they are
given a :class:`Resolver`.  Live runs use :class:`mta.dns.live.LiveResolver`
(dnspython against real servers); simulated runs use
:class:`sim.world.dns.SimResolver` (answers from zone text, with latency and
outages in virtual time).

Errors are exceptions so that "the name does not exist" (``NXDomain``) can
never be confused with "we could not find out" (``DnsTimeout``,
``ServFail``): mail policy treats those very differently.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Protocol


class DnsError(Exception):
    """Base of every resolver failure."""


class NXDomain(DnsError):
    """The name does not exist (authoritative)."""


class DnsTimeout(DnsError):
    """No answer in time: a temporary failure."""


class ServFail(DnsError):
    """The server answered SERVFAIL: a temporary failure."""


@dataclass(frozen=True, order=True)
class MxRecord:
    """One MX record.  ``exchange == "."`` with preference 0 is a null MX
    (RFC 7505): the domain accepts no mail."""

    preference: int
    exchange: str

    @property
    def is_null(self) -> bool:
        return self.exchange == "."


class Resolver(Protocol):
    """What components may ask of DNS.  All names are absolute, without the
    trailing dot, compared case-insensitively."""

    async def mx(self, domain: str) -> list[MxRecord]:
        """MX records sorted by (preference, exchange), not shuffled.

        Returns ``[]`` when the domain exists but has no MX (the caller then
        uses the domain's address, RFC 5321 §5.1).  Raises NXDomain,
        DnsTimeout or ServFail.
        """
        ...

    async def a(self, name: str) -> list[str]:
        """IPv4 addresses, sorted.  ``[]`` if the name has no A record."""
        ...

    async def txt(self, name: str) -> list[str]:
        """TXT strings (each record's strings joined), sorted."""
        ...

    async def dnsbl(self, ip: str, zone: str) -> list[str]:
        """Block-list answers for ``ip`` in ``zone`` (RFC 5782 §2.1).

        Looks up the A records of the reversed octets under ``zone``.
        Returns the addresses answered (``[]`` when not listed: NXDOMAIN or
        no A record).  Interpreting them (127.0.0.x listed, 127.255.255.x an
        error) is policy's business, see :func:`dnsbl_query_name`.
        """
        ...


def dnsbl_query_name(ip: str, zone: str) -> str:
    """``1.2.3.4`` in ``zen.example`` -> ``4.3.2.1.zen.example`` (RFC 5782)."""
    addr = ipaddress.IPv4Address(ip)
    return ".".join(reversed(str(addr).split("."))) + "." + zone.rstrip(".")
