"""The simulated resolver: answers from zone text, latency and outages in loop time."""
from __future__ import annotations

import asyncio

import pytest

from mta.dns.resolver import DnsTimeout, MxRecord, NXDomain, ServFail
from sim.world.dns import Outage, SimResolver, ZoneSet, split_zones

ZONES = """\
; several zones in one blob, as a scenario file holds them
$TTL 300
$ORIGIN example.com.
@        MX 20 mx2
@        MX 10 mx1.example.com.
@        MX 20 mx0
@        TXT "v=spf1 " "-all"
mx0      A 192.0.2.12
mx1      A 192.0.2.10
mx2      A 192.0.2.11
mx2      A 192.0.2.9
mx2      A 192.0.2.100
www      CNAME mx1
loop1    CNAME loop2
loop2    CNAME loop1
x.ent    A 198.51.100.1
$ORIGIN sub.example.com.
@        MX 5 mail.sub.example.com.
mail     A 203.0.113.5
$ORIGIN null.example.
@        MX 0 .
$ORIGIN nomx.example.
@        A 192.0.2.50
$ORIGIN zen.example.
2.0.0.127  A 127.0.0.2
2.0.0.127  TXT "listed: test entry"
4.2.0.192  A 127.0.0.4
4.2.0.192  A 127.0.0.11
*.wild     A 127.0.0.3
"""


def run(coro):
    return asyncio.run(coro)


@pytest.fixture
def resolver() -> SimResolver:
    return SimResolver.from_text(ZONES, latency=0.001)


def test_split_zones_keeps_each_origin_and_the_shared_ttl():
    zones = split_zones(ZONES)
    assert sorted(zones) == ["example.com", "nomx.example", "null.example",
                             "sub.example.com", "zen.example"]
    assert all(text.startswith("$TTL 300") for text in zones.values())
    with pytest.raises(ValueError, match="before any \\$ORIGIN"):
        split_zones("www A 192.0.2.1\n$ORIGIN a.example.\n")


def test_mx_sorted_by_preference_then_name(resolver):
    assert run(resolver.mx("example.com")) == [
        MxRecord(10, "mx1.example.com"),
        MxRecord(20, "mx0.example.com"),
        MxRecord(20, "mx2.example.com"),
    ]


def test_names_are_case_insensitive_and_trailing_dot_optional(resolver):
    assert run(resolver.mx("EXAMPLE.com.")) == run(resolver.mx("example.com"))
    assert run(resolver.a("MX1.Example.COM")) == ["192.0.2.10"]


def test_null_mx(resolver):
    records = run(resolver.mx("null.example"))
    assert records == [MxRecord(0, ".")]
    assert records[0].is_null


def test_no_mx_is_empty_not_nxdomain(resolver):
    assert run(resolver.mx("nomx.example")) == []
    assert run(resolver.a("nomx.example")) == ["192.0.2.50"]


def test_nxdomain_versus_nodata(resolver):
    with pytest.raises(NXDomain):
        run(resolver.a("missing.example.com"))
    # A name that exists with other types only: no data, not NXDOMAIN.
    assert run(resolver.a("example.com")) == []
    # An empty non-terminal exists too (RFC 8020).
    assert run(resolver.a("ent.example.com")) == []
    # A name under no zone at all does not exist.
    with pytest.raises(NXDomain):
        run(resolver.mx("elsewhere.org"))


def test_longest_suffix_zone_answers(resolver):
    assert run(resolver.mx("sub.example.com")) == [MxRecord(5, "mail.sub.example.com")]
    # The child zone is authoritative below its origin: the parent's names do not leak.
    with pytest.raises(NXDomain):
        run(resolver.a("mx1.sub.example.com"))


def test_a_records_sorted_numerically(resolver):
    assert run(resolver.a("mx2.example.com")) == ["192.0.2.9", "192.0.2.11", "192.0.2.100"]


def test_txt_strings_joined(resolver):
    assert run(resolver.txt("example.com")) == ["v=spf1 -all"]


def test_cname_followed_and_loops_fail(resolver):
    assert run(resolver.a("www.example.com")) == ["192.0.2.10"]
    with pytest.raises(ServFail):
        run(resolver.a("loop1.example.com"))


def test_dnsbl_listed_unlisted_and_wildcard(resolver):
    assert run(resolver.dnsbl("127.0.0.2", "zen.example")) == ["127.0.0.2"]
    assert run(resolver.dnsbl("192.0.2.4", "zen.example")) == ["127.0.0.4", "127.0.0.11"]
    # RFC 5782 §5: 127.0.0.1 must not be listed -> NXDOMAIN -> [].
    assert run(resolver.dnsbl("127.0.0.1", "zen.example")) == []
    assert run(resolver.a("1.2.3.4.wild.zen.example")) == ["127.0.0.3"]


async def _timed(coro):
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        return await coro, loop.time() - start
    except Exception as exc:  # noqa: BLE001 - the test inspects it
        return exc, loop.time() - start


def test_latency_is_spent_on_the_loop():
    r = SimResolver.from_text(ZONES, latency=0.05)
    result, took = run(_timed(r.a("mx1.example.com")))
    assert result == ["192.0.2.10"]
    assert took >= 0.05 - 0.005  # asyncio may fire a timer one clock tick early


def test_timeout_outage_waits_then_raises():
    # Outage times are loop times; on a real loop "now" is monotonic, so
    # cover the whole range.
    r = SimResolver.from_text(ZONES, latency=0.0, timeout=0.05,
                              outages=[(0, float("inf"), "timeout")])
    result, took = run(_timed(r.mx("example.com")))
    assert isinstance(result, DnsTimeout)
    assert took >= 0.05 - 0.005


def test_servfail_outage_raises_after_latency():
    r = SimResolver.from_text(ZONES, latency=0.01,
                              outages=[Outage(0, float("inf"), "servfail")])
    result, took = run(_timed(r.mx("example.com")))
    assert isinstance(result, ServFail)
    assert took >= 0.01 - 0.005


def test_outage_limited_to_a_zone_and_a_name():
    r = SimResolver.from_text(ZONES, timeout=0.01, outages=[
        (0, float("inf"), "timeout", "zen.example"),            # a block list down
        {"start": 0, "end": float("inf"), "mode": "servfail", "target": "mx2.example.com"},
    ])
    with pytest.raises(DnsTimeout):
        run(r.dnsbl("127.0.0.2", "zen.example"))
    with pytest.raises(ServFail):
        run(r.a("mx2.example.com"))
    assert run(r.a("mx1.example.com")) == ["192.0.2.10"]
    assert run(r.mx("example.com"))[0] == MxRecord(10, "mx1.example.com")


def test_outage_window_is_half_open():
    outage = Outage(10.0, 20.0, "servfail")
    from sim.world.dns import _absolute
    name = _absolute("a.example")
    assert not outage.covers(name, 9.999)
    assert outage.covers(name, 10.0)
    assert not outage.covers(name, 20.0)


def test_bad_outages_and_zones_are_refused():
    with pytest.raises(ValueError):
        Outage(5, 1, "timeout")
    with pytest.raises(ValueError):
        Outage(0, 1, "flaky")
    with pytest.raises(ValueError, match="zone bad.example"):
        ZoneSet({"bad.example": "@ MX notanumber mx\n"})


def test_answers_do_not_depend_on_zone_order():
    zones = split_zones(ZONES)
    reordered = {k: zones[k] for k in sorted(zones, reverse=True)}
    a, b = SimResolver(zones), SimResolver(reordered)
    for name in ["example.com", "sub.example.com", "null.example"]:
        assert run(a.mx(name)) == run(b.mx(name))


def test_timeout_costs_virtual_time_not_wall_time():
    world_mod = pytest.importorskip("sim.world.core")
    world = world_mod.World(seed=1, scenario="dns-timeout")
    host = world.add_host("client.example", "192.0.2.99")
    world.set_zones(ZONES, latency=0.02, timeout=5.0)
    world.resolver.add_outage(100.0, 200.0, "timeout", "zen.example")

    async def scenario():
        loop = asyncio.get_running_loop()
        results = []
        for start in (50.0, 150.0, 250.0):
            await asyncio.sleep(start - loop.time())
            t0 = loop.time()
            try:
                answer = await host.ctx.resolver.dnsbl("127.0.0.2", "zen.example")
            except DnsTimeout:
                answer = "timeout"
            results.append((t0, answer, loop.time() - t0))
        return results

    results = world.run_until_complete(host, scenario())
    assert results == [
        (50.0, ["127.0.0.2"], pytest.approx(0.02)),
        (150.0, "timeout", pytest.approx(5.0)),
        (250.0, ["127.0.0.2"], pytest.approx(0.02)),
    ]
    # The timeout is spent in virtual time: the world's clock moved by it.
    assert world.now() == pytest.approx(250.02)


def test_repeated_questions_get_the_same_answers_until_a_zone_changes():
    zones = ZoneSet.from_text(ZONES)
    first = zones.lookup("mx2.example.com", "A")
    first.clear()                     # the caller's list: the next answer is whole
    assert [rd.address for rd in zones.lookup("MX2.example.com.", "A")] == [
        "192.0.2.100", "192.0.2.11", "192.0.2.9"]
    for _ in range(2):                # NXDOMAIN remembered, raised afresh each time
        with pytest.raises(NXDomain, match="new.example.com"):
            zones.lookup("new.example.com", "A")
    zones.add_zone("new.example.com", "@ A 192.0.2.77\n")
    assert [rd.address for rd in zones.lookup("new.example.com", "A")] == ["192.0.2.77"]
    with pytest.raises(ServFail):     # a CNAME loop keeps failing
        zones.lookup("loop1.example.com", "A")
    with pytest.raises(ServFail):
        zones.lookup("loop1.example.com", "A")
