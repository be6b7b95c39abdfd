"""DNSBL stage (RFC 5782): classification, prefetch through a real resolver
(the simulated one, on a plain asyncio loop), fail-open and fail-closed."""
from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mta.policy import DnsblStage, DnsblZone, Facts, Lookup, LookupResult, Networks, Phase, PolicyChain, prefetch
from mta.policy.dnsbl import classify
from sim.world.dns import SimResolver

ZONES = """
$ORIGIN zen.example.
@ 3600 IN SOA ns.zen.example. hostmaster.zen.example. 1 3600 600 86400 60
@ IN NS ns.zen.example.
2.0.0.127 IN A 127.0.0.2
9.113.0.203 IN A 127.0.0.4
8.113.0.203 IN A 127.0.0.10
7.113.0.203 IN A 127.255.255.254
6.113.0.203 IN A 192.0.2.1
$ORIGIN slow.example.
@ 3600 IN SOA ns.slow.example. hostmaster.slow.example. 1 3600 600 86400 60
@ IN NS ns.slow.example.
9.113.0.203 IN A 127.0.0.2
"""


def test_classify() -> None:
    assert classify(()) == "clean"
    assert classify(("127.0.0.2",)) == "listed"
    assert classify(("127.255.255.254",)) == "error"
    assert classify(("127.255.255.252", "127.0.0.3")) == "listed"
    assert classify(("10.0.0.1",)) == "bogus"
    assert classify(("127.0.0.10",), codes=("127.0.0.4",)) == "clean"


@given(st.integers(0, 255), st.integers(0, 255), st.integers(1, 255))
def test_classify_loopback_space(b: int, c: int, d: int) -> None:
    ip = f"127.{b}.{c}.{d}"
    expected = "error" if (b, c) == (255, 255) else "listed"
    assert classify((ip,)) == expected


def test_zone_validation() -> None:
    with pytest.raises(ValueError):
        DnsblZone("zen.example", fail="maybe")
    with pytest.raises(ValueError):
        DnsblZone("zen.example", codes=("10.0.0.1",))


def decide(ip: str, zones: tuple[DnsblZone, ...], resolver: SimResolver, phase=Phase.RCPT):
    stage = DnsblStage(zones, phase=phase, exempt=Networks(["192.168.0.0/16"]))
    chain = PolicyChain([stage])
    facts = Facts(client_ip=ip)

    async def run():
        await prefetch(resolver, chain.lookups(Phase.CONNECT, facts), facts)
        return chain.decide(phase, facts, None)

    return asyncio.run(run()), facts


def test_listed_client_refused_with_postfix_text() -> None:
    out, facts = decide("203.0.113.9", (DnsblZone("zen.example"),), SimResolver.from_text(ZONES))
    assert out.decision.reply == ("554 5.7.1 Service unavailable; Client host [203.0.113.9] "
                                  "blocked using zen.example")
    assert facts.dns[Lookup("dnsbl", "203.0.113.9", "zen.example")] == LookupResult(("127.0.0.4",))


def test_rfc5782_test_entries() -> None:
    r = SimResolver.from_text(ZONES)
    assert decide("127.0.0.2", (DnsblZone("zen.example"),), r)[0].refused
    assert not decide("127.0.0.1", (DnsblZone("zen.example"),), r)[0].refused


def test_codes_filter_xbl_only() -> None:
    xbl = DnsblZone("zen.example", codes=("127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7"))
    r = SimResolver.from_text(ZONES)
    assert decide("203.0.113.9", (xbl,), r)[0].refused       # 127.0.0.4
    assert not decide("203.0.113.8", (xbl,), r)[0].refused   # 127.0.0.10 (PBL)


def test_error_answer_is_not_a_listing_and_is_noted() -> None:
    r = SimResolver.from_text(ZONES)
    out, _ = decide("203.0.113.7", (DnsblZone("zen.example"),), r)
    assert not out.refused
    assert [n.decision for _, n in out.notes] == ["fail-open"]
    out, _ = decide("203.0.113.7", (DnsblZone("zen.example", fail="closed"),), r)
    assert out.decision.code == 451 and out.decision.enhanced == "4.7.1"
    out, _ = decide("203.0.113.6", (DnsblZone("zen.example"),), r)
    assert not out.refused and out.notes[0][1].decision == "bogus-answer"


@pytest.mark.parametrize("mode", ["timeout", "servfail"])
def test_unanswered_list_fail_open_and_closed(mode: str) -> None:
    def resolver() -> SimResolver:
        r = SimResolver.from_text(ZONES, timeout=0.01)
        r.add_outage(0, 1e12, mode, target="slow.example")
        return r

    open_out, facts = decide("203.0.113.9", (DnsblZone("slow.example", fail="open"),), resolver())
    assert not open_out.refused
    assert open_out.notes[0][1].decision == "fail-open"
    assert mode in open_out.notes[0][1].detail
    closed_out, _ = decide("203.0.113.9", (DnsblZone("slow.example", fail="closed"),), resolver())
    assert closed_out.decision.code == 451
    assert closed_out.notes[0][1].decision == "fail-closed"
    # A second, answering list still refuses a listed client when the first is open.
    both, _ = decide("203.0.113.9", (DnsblZone("slow.example"), DnsblZone("zen.example")), resolver())
    assert both.decision.code == 554 and both.notes[0][1].decision == "fail-open"


def test_exempt_and_ipv6_not_looked_up() -> None:
    stage = DnsblStage((DnsblZone("zen.example"),), exempt=Networks(["192.168.0.0/16"]))
    assert stage.lookups(Phase.CONNECT, Facts(client_ip="192.168.1.1")) == ()
    assert stage.lookups(Phase.CONNECT, Facts(client_ip="2001:db8::1")) == ()
    assert stage.lookups(Phase.RCPT, Facts(client_ip="203.0.113.9")) == ()


def test_connect_phase_variant() -> None:
    out, _ = decide("203.0.113.9", (DnsblZone("zen.example"),), SimResolver.from_text(ZONES),
                    phase=Phase.CONNECT)
    assert out.decision.code == 554


def test_no_resolver_is_an_error_not_a_pass() -> None:
    facts = Facts(client_ip="203.0.113.9")
    q = [Lookup("dnsbl", "203.0.113.9", "zen.example")]
    asyncio.run(prefetch(None, q, facts))
    assert facts.dns[q[0]].error == "no-resolver"


def test_a_scenario_outage_can_cover_one_block_list_only() -> None:
    from sim.convert import resolver_options
    from sim.scenario.schema import Dns
    dns = Dns(zones="$ORIGIN example.net.\n@ MX 10 mx1.example.net.\n",
              outages=[{"start": "2h", "end": "3h", "target": "relays.ordb.example"},
                       {"start": "5h", "end": "6h", "mode": "servfail"}])
    assert resolver_options(dns)["outages"] == [(7200.0, 10800.0, "timeout",
                                                 "relays.ordb.example"),
                                                (18000.0, 21600.0, "servfail", None)]
