"""A tiny authoritative DNS server over UDP, answering from a
:class:`~sim.world.zones.ZoneSet`: ``mxsim serve`` answers a scenario's zone
text with it (the same zone objects the simulation answers from), and the
live resolver's tests use it instead of mocks, so they exchange real DNS
packets."""
from __future__ import annotations

import asyncio
from typing import Mapping

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from mta.dns.resolver import NXDomain, ServFail
from sim.world.zones import DEFAULT_TTL, ZoneSet, _absolute, _text


class ZoneServer(asyncio.DatagramProtocol):
    """A tiny authoritative DNS server over UDP, answering from a ZoneSet.

    ``failures`` maps a name (covering everything below it) to ``"drop"``
    (never answer: the client times out), ``"servfail"`` or ``"refused"``.
    Start it with :meth:`start` on the running loop; ``address`` is then
    ``(host, port)``.
    """

    def __init__(self, zoneset: ZoneSet, failures: Mapping[str, str] | None = None) -> None:
        self.zoneset = zoneset
        self.failures: dict[str, str] = dict(failures or {})
        self.transport: asyncio.DatagramTransport | None = None
        self.queries: list[tuple[str, str]] = []

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=(host, port))
        return self.address

    @property
    def address(self) -> tuple[str, int]:
        assert self.transport is not None, "server not started"
        return self.transport.get_extra_info("sockname")[:2]

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return  # not DNS: ignore, as servers do
        response = self.answer(query)
        if response is not None and self.transport is not None:
            self.transport.sendto(response.to_wire(), addr)

    def _failure(self, qname: dns.name.Name) -> str | None:
        for target in sorted(self.failures):
            if qname.is_subdomain(_absolute(target)):
                return self.failures[target]
        return None

    def answer(self, query: dns.message.Message) -> dns.message.Message | None:
        """The response to ``query``, or None to stay silent."""
        response = dns.message.make_response(query)
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response
        q = query.question[0]
        self.queries.append((_text(q.name), dns.rdatatype.to_text(q.rdtype)))
        failure = self._failure(q.name)
        if failure == "drop":
            return None
        if failure in ("servfail", "refused"):
            response.set_rcode(dns.rcode.SERVFAIL if failure == "servfail" else dns.rcode.REFUSED)
            return response
        response.flags |= dns.flags.AA
        try:
            rdatas = self.zoneset.lookup(q.name, dns.rdatatype.to_text(q.rdtype))
        except NXDomain:
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response
        except ServFail:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response
        if rdatas:
            rrset = dns.rrset.from_rdata_list(q.name, DEFAULT_TTL, rdatas)
            response.answer.append(rrset)
        return response
