"""The live resolver: dnspython's asynchronous stub resolver on real servers.

:class:`LiveResolver` implements :class:`mta.dns.resolver.Resolver` for runs on real
sockets.  It asks the configured nameservers (or the system's, from
``/etc/resolv.conf``, when none are given) and turns dnspython's outcomes
into the interface's:

==============================================  =========================
dnspython                                       mxsim
==============================================  =========================
answer                                          sorted list
``NoAnswer`` (the name exists, no such record)  ``[]``
``NXDOMAIN``                                    :class:`NXDomain`
``LifetimeTimeout`` / ``Timeout``               :class:`DnsTimeout`
``NoNameservers`` (every server failed: SERVFAIL, REFUSED, errors)
                                                :class:`ServFail`
any other ``DNSException`` (YXDOMAIN, bad answers)
                                                :class:`ServFail`
==============================================  =========================

dnspython measures its timeouts on the wall clock and opens real UDP
sockets, which is why simulated runs use :class:`sim.world.dns.SimResolver`
instead (DESIGN.md pitfall 8).  Names are always queried as absolute names,
so no search list ever applies.
"""
from __future__ import annotations

import ipaddress
from typing import Sequence

import dns.asyncresolver
import dns.exception
import dns.name
import dns.resolver

from mta.dns.resolver import DnsTimeout, MxRecord, NXDomain, ServFail, dnsbl_query_name

#: Seconds to wait for one server's answer before trying again (dnspython's
#: per-attempt ``timeout``).
DEFAULT_ATTEMPT_TIMEOUT = 2.0
#: Seconds for the whole query, all retries included (dnspython's
#: ``lifetime``): after this the query raises DnsTimeout.
DEFAULT_TIMEOUT = 5.0


def _qname(name: str) -> dns.name.Name:
    text = name.strip()
    return dns.name.from_text(text if text.endswith(".") else text + ".")


def _text(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True).lower()


class RecordResolver:
    """The :class:`mta.dns.resolver.Resolver` answers, built from dnspython rdatas.

    Subclasses provide ``_rdatas(name, rdtype)``: the rdatas of one query,
    ``[]`` for no data, or NXDomain/DnsTimeout/ServFail.  Here they become
    the protocol's sorted answers, the same way for live DNS and for the
    simulated zones (:class:`sim.world.dns.SimResolver`), so a run never depends
    on the order a server or dnspython gave the records in.
    """

    async def _rdatas(self, name: str, rdtype: str) -> list:
        raise NotImplementedError

    async def mx(self, domain: str) -> list[MxRecord]:
        rds = await self._rdatas(domain, "MX")
        return sorted(MxRecord(rd.preference, _text(rd.exchange)) for rd in rds)

    async def a(self, name: str) -> list[str]:
        rds = await self._rdatas(name, "A")
        return [str(ip) for ip in sorted(ipaddress.IPv4Address(rd.address) for rd in rds)]

    async def txt(self, name: str) -> list[str]:
        rds = await self._rdatas(name, "TXT")
        return sorted(b"".join(rd.strings).decode("utf-8", "replace") for rd in rds)

    async def dnsbl(self, ip: str, zone: str) -> list[str]:
        try:
            return await self.a(dnsbl_query_name(ip, zone))
        except NXDomain:
            return []


class LiveResolver(RecordResolver):
    """:class:`mta.dns.resolver.Resolver` on dnspython's async resolver.

    ``nameservers`` are IP addresses (``None``: the system configuration),
    all asked on ``port``.  ``timeout`` bounds a whole query in seconds;
    ``attempt_timeout`` bounds each try of one server.
    """

    def __init__(self, nameservers: Sequence[str] | None = None, *, port: int = 53,
                 timeout: float = DEFAULT_TIMEOUT,
                 attempt_timeout: float | None = None, tcp: bool = False) -> None:
        if nameservers is None:
            self._resolver = dns.asyncresolver.Resolver(configure=True)
        else:
            if not nameservers:
                raise ValueError("nameservers: give at least one address, or None for the system's")
            for ns in nameservers:
                ipaddress.ip_address(ns)  # ValueError for a name: servers are addresses
            self._resolver = dns.asyncresolver.Resolver(configure=False)
            self._resolver.nameservers = list(nameservers)
        self._resolver.port = port
        self._resolver.lifetime = float(timeout)
        self._resolver.timeout = float(attempt_timeout if attempt_timeout is not None
                                       else min(DEFAULT_ATTEMPT_TIMEOUT, timeout))
        self._resolver.cache = None  # every query goes to the servers
        self.tcp = tcp

    @property
    def nameservers(self) -> list[str]:
        return [str(ns) for ns in self._resolver.nameservers]

    async def _rdatas(self, name: str, rdtype: str) -> list:
        qname = _qname(name)
        try:
            answer = await self._resolver.resolve(qname, rdtype, tcp=self.tcp, search=False,
                                                  raise_on_no_answer=True)
        except dns.resolver.NXDOMAIN as exc:
            raise NXDomain(_text(qname)) from exc
        except dns.resolver.NoAnswer:
            return []
        except dns.exception.Timeout as exc:  # LifetimeTimeout is a Timeout
            raise DnsTimeout(f"{_text(qname)} {rdtype}: {exc}") from exc
        except dns.resolver.NoNameservers as exc:
            raise ServFail(f"{_text(qname)} {rdtype}: {exc}") from exc
        except dns.exception.DNSException as exc:
            raise ServFail(f"{_text(qname)} {rdtype}: {type(exc).__name__}: {exc}") from exc
        return list(answer)
