"""The live resolver against a real UDP DNS server on 127.0.0.1 (no internet).

The server (sim/live/zone_server.py) answers from zone text with real DNS
messages built by dnspython, so LiveResolver's error mapping and answer
shaping go through dnspython's real async resolver and real sockets.
"""
from __future__ import annotations

import asyncio

import dns.message
import dns.rcode
import pytest

from mta.dns.resolver import DnsTimeout, MxRecord, NXDomain, ServFail
from mta.dns.live import LiveResolver
from sim.live.zone_server import ZoneServer
from sim.world.dns import ZoneSet

ZONES = """\
$ORIGIN example.com.
@        MX 20 mx2
@        MX 10 mx1
@        TXT "v=spf1 " "-all"
mx1      A 192.0.2.10
mx2      A 192.0.2.100
mx2      A 192.0.2.9
x.ent    A 198.51.100.1
$ORIGIN null.example.
@        MX 0 .
$ORIGIN nomx.example.
@        A 192.0.2.50
$ORIGIN zen.example.
2.0.0.127  A 127.0.0.2
"""

FAILURES = {
    "dead.example.com": "drop",
    "broken.example.com": "servfail",
    "refused.example.com": "refused",
}


async def with_server(body, failures=FAILURES):
    server = ZoneServer(ZoneSet.from_text(ZONES), failures)
    host, port = await server.start()
    try:
        resolver = LiveResolver([host], port=port, timeout=0.6, attempt_timeout=0.2)
        return await body(resolver, server)
    finally:
        server.close()


def test_mx_answers_are_shaped_and_sorted():
    async def body(r, _server):
        return await r.mx("example.com"), await r.mx("null.example")
    mx, null = asyncio.run(with_server(body))
    assert mx == [MxRecord(10, "mx1.example.com"), MxRecord(20, "mx2.example.com")]
    assert null == [MxRecord(0, ".")] and null[0].is_null


def test_a_txt_and_dnsbl():
    async def body(r, _server):
        return (await r.a("mx2.example.com"), await r.txt("example.com"),
                await r.dnsbl("127.0.0.2", "zen.example"),
                await r.dnsbl("127.0.0.1", "zen.example"))
    a, txt, listed, unlisted = asyncio.run(with_server(body))
    assert a == ["192.0.2.9", "192.0.2.100"]
    assert txt == ["v=spf1 -all"]
    assert listed == ["127.0.0.2"]
    assert unlisted == []


def test_noanswer_is_empty_list():
    async def body(r, _server):
        return await r.mx("nomx.example"), await r.a("example.com"), await r.a("ent.example.com")
    assert asyncio.run(with_server(body)) == ([], [], [])


def test_nxdomain_maps_to_NXDomain():
    async def body(r, _server):
        with pytest.raises(NXDomain):
            await r.a("missing.example.com")
        with pytest.raises(NXDomain):
            await r.mx("unknown.org")
    asyncio.run(with_server(body))


def test_silence_maps_to_DnsTimeout():
    async def body(r, server):
        with pytest.raises(DnsTimeout):
            await r.mx("dead.example.com")
        # The server really was asked (more than once: dnspython retries).
        assert server.queries.count(("dead.example.com", "MX")) >= 2
    asyncio.run(with_server(body))


def test_servfail_and_refused_map_to_ServFail():
    async def body(r, _server):
        with pytest.raises(ServFail):
            await r.a("broken.example.com")
        with pytest.raises(ServFail):
            await r.a("refused.example.com")
    asyncio.run(with_server(body))


def test_queries_are_absolute_names_without_search_list():
    async def body(r, server):
        await r.a("mx1.example.com")
        return server.queries
    assert asyncio.run(with_server(body)) == [("mx1.example.com", "A")]


def test_server_builds_real_dns_responses():
    server = ZoneServer(ZoneSet.from_text(ZONES), FAILURES)
    query = dns.message.make_query("mx1.example.com.", "A")
    response = server.answer(query)
    assert response.rcode() == dns.rcode.NOERROR
    assert [rd.address for rd in response.answer[0]] == ["192.0.2.10"]
    assert server.answer(dns.message.make_query("nope.example.com.", "A")).rcode() == dns.rcode.NXDOMAIN
    assert server.answer(dns.message.make_query("dead.example.com.", "A")) is None


def test_nameservers_must_be_addresses():
    with pytest.raises(ValueError):
        LiveResolver(["ns1.example.com"])
    with pytest.raises(ValueError):
        LiveResolver([])
    assert LiveResolver(["127.0.0.1"], port=5353).nameservers == ["127.0.0.1"]
