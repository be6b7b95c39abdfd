"""MX delivery in the simulated world: order, fallback, null MX, pruning, routes.

Every next hop is a real aiosmtpd server on a simulated host; the sender
is a QueueManager with a MemoryStore.  Nothing here depends on a retry
preset: a fixed 300 s schedule is enough.
"""
from __future__ import annotations

import pytest

from mta import events as ev
from mta.delivery.client import DeliveryConfig
from mta.delivery.routing import Route, RouteFailure, order_mx
from mta.dns.resolver import MxRecord
from mta.queue.policy import QueueConfig
from sim.world.core import World
from helpers.queue import FixedSchedule, Recorder, queue_for, serve, zones

MSG = b"From: a@a.example\r\nSubject: t\r\n\r\nhello\r\n"

B_ZONE = {"b.example": ["@ MX 10 mx1", "@ MX 20 mx2a", "@ MX 20 mx2b", "@ MX 30 mx3",
                        "mx1 A 192.0.2.11", "mx2a A 192.0.2.21", "mx2b A 192.0.2.22",
                        "mx3 A 192.0.2.31"],
          "a.example": ["@ MX 10 a.example.", "@ A 192.0.2.1"]}


def build(seed=1, zone=B_ZONE, listening=("mx2a", "mx2b", "mx3"), handlers=None,
          delivery=None, config=None, sender="a.example"):
    world = World(seed=seed)
    hosts = {"a": world.add_host(sender, "192.0.2.1")}
    recs = {}
    for name, ip in (("mx1", "192.0.2.11"), ("mx2a", "192.0.2.21"), ("mx2b", "192.0.2.22"),
                     ("mx3", "192.0.2.31")):
        h = world.add_host(f"{name}.b.example", ip)
        hosts[name] = h
        if name in listening:
            recs[name] = (handlers or {}).get(name) or Recorder(name)
            world.run_until_complete(h, serve(recs[name], h.name))
    world.set_zones(zones(zone))
    # The sender's own domain is local, so DSNs land in its mailboxes.
    config = config or QueueConfig(retry=FixedSchedule(), local_domains=(sender,))
    q = queue_for(hosts["a"], config=config, delivery=delivery)
    world.run_until_complete(hosts["a"], q.start())
    return world, hosts, recs, q


def submit(world, host, q, rcpts, mail_from="a@a.example", data=MSG):
    return world.run_until_complete(host, q.submit(mail_from, rcpts, data))


def kinds(world, cls, **match):
    return [e for e in world.events if isinstance(e, cls)
            and all(getattr(e, k) == v for k, v in match.items())]


def test_falls_back_from_refused_primary_to_next_preference():
    world, h, recs, q = build()
    submit(world, h["a"], q, ["u@b.example"])
    world.run(until=60)
    tried = [e.dest_host for e in kinds(world, ev.ConnectAttempt, purpose="deliver")]
    assert tried[0] == "mx1.b.example"
    assert tried[1] in ("mx2a.b.example", "mx2b.b.example")
    assert kinds(world, ev.ConnectAttempt, dest_host="mx1.b.example")[0].outcome == "refused"
    relayed = kinds(world, ev.Relayed)
    assert [r.dest_host for r in relayed] == [tried[1]]
    assert sum(len(r.messages) for r in recs.values()) == 1


def test_equal_preferences_are_shuffled_by_the_seed_and_reproducible():
    firsts = {}
    for seed in range(12):
        world, h, recs, q = build(seed=seed)
        submit(world, h["a"], q, ["u@b.example"])
        world.run(until=60)
        firsts[seed] = kinds(world, ev.Relayed)[0].dest_host
    assert set(firsts.values()) == {"mx2a.b.example", "mx2b.b.example"}
    world, h, recs, q = build(seed=3)
    submit(world, h["a"], q, ["u@b.example"])
    world.run(until=60)
    assert kinds(world, ev.Relayed)[0].dest_host == firsts[3]


def test_order_mx_prunes_own_preference_and_above():
    recs = [MxRecord(10, "p.example"), MxRecord(20, "me.example"), MxRecord(20, "peer.example"),
            MxRecord(30, "low.example")]
    import random
    assert [r.exchange for r in order_mx(recs, random.Random(0), ("me.example",))] == ["p.example"]
    with pytest.raises(RouteFailure) as exc:
        order_mx(recs[:2] + recs[3:], random.Random(0), ("p.example",))
    assert exc.value.permanent and "5.4.6" in exc.value.text


def test_4xx_greeting_and_mail_fall_back_to_next_mx():
    handlers = {"mx2a": Recorder("mx2a", mail_reply="451 4.3.0 try later"),
                "mx2b": Recorder("mx2b", mail_reply="451 4.3.0 try later")}
    world, h, recs, q = build(handlers=handlers, delivery=DeliveryConfig(max_sessions=3))
    submit(world, h["a"], q, ["u@b.example"])
    world.run(until=60)
    relayed = kinds(world, ev.Relayed)
    assert [r.dest_host for r in relayed] == ["mx3.b.example"]
    tried = [e.dest_host for e in kinds(world, ev.AttemptStarted)]
    assert tried[0] == "mx1.b.example" and tried[-1] == "mx3.b.example" and len(tried) == 4


def test_session_limit_defers_after_two_answering_hosts():
    handlers = {n: Recorder(n, mail_reply="451 4.3.0 busy") for n in ("mx2a", "mx2b", "mx3")}
    world, h, recs, q = build(handlers=handlers)
    submit(world, h["a"], q, ["u@b.example"])
    world.run(until=60)
    d = kinds(world, ev.Deferred)
    assert len(d) == 1 and d[0].code == 451 and d[0].next_attempt == pytest.approx(d[0].t + 300)
    assert not kinds(world, ev.AttemptStarted, dest_host="mx3.b.example")


def test_relaying_mx_delivers_only_to_better_preference():
    # This host is mx2a (preference 20): it must never try mx2b or mx3.
    world = World(seed=1)
    me = world.add_host("mx2a.b.example", "192.0.2.21")
    mx1 = world.add_host("mx1.b.example", "192.0.2.11")
    world.add_host("mx2b.b.example", "192.0.2.22")
    world.set_zones(zones(B_ZONE))
    rec = Recorder("mx1")
    q = queue_for(me)
    world.run_until_complete(me, q.start())
    submit(world, me, q, ["u@b.example"])
    world.run(until=60)
    assert {e.dest_host for e in kinds(world, ev.AttemptStarted)} == {"mx1.b.example"}
    assert kinds(world, ev.Deferred)     # primary down: hold and retry
    world.run_until_complete(mx1, serve(rec, mx1.name))
    world.run(until=400)
    assert rec.rcpts() == ["u@b.example"]


def test_relaying_mx_with_nothing_better_bounces():
    zone = {"b.example": ["@ MX 10 mx1", "mx1 A 192.0.2.11"], "a.example": ["@ A 192.0.2.1"]}
    world = World(seed=1)
    me = world.add_host("mx1.b.example", "192.0.2.11")
    world.set_zones(zones(zone))
    q = queue_for(me)
    world.run_until_complete(me, q.start())
    submit(world, me, q, ["u@b.example"])
    world.run(until=10)
    b = kinds(world, ev.Bounced, rcpt="u@b.example")
    assert len(b) == 1 and "5.4.6" in b[0].text


def test_null_mx_fails_at_once_with_556_and_no_connection():
    zone = {"null.example": ["@ MX 0 ."], "a.example": ["@ A 192.0.2.1"]}
    world, h, recs, q = build(zone=zone, listening=())
    submit(world, h["a"], q, ["u@null.example"])
    world.run(until=10)
    b = kinds(world, ev.Bounced, rcpt="u@null.example")
    assert len(b) == 1 and b[0].code == 556 and b[0].text.startswith("5.1.10")
    assert b[0].reason == "null-mx" and b[0].dsn_trace
    assert not kinds(world, ev.AttemptStarted, msg=b[0].msg)
    assert not kinds(world, ev.ConnectAttempt, dest_host="null.example")


def test_no_mx_uses_the_domains_address():
    zone = {"b.example": ["@ A 192.0.2.31"], "a.example": ["@ A 192.0.2.1"]}
    world, h, recs, q = build(zone=zone, listening=("mx3",))
    submit(world, h["a"], q, ["u@b.example"])
    world.run(until=10)
    r = kinds(world, ev.Relayed)
    assert [(x.dest_host, x.dest_ip) for x in r] == [("b.example", "192.0.2.31")]


def test_unknown_domain_bounces_with_5_1_2():
    world, h, recs, q = build()
    submit(world, h["a"], q, ["u@nowhere.invalid"])
    world.run(until=10)
    b = kinds(world, ev.Bounced, rcpt="u@nowhere.invalid")
    assert len(b) == 1 and b[0].code == 550 and "5.1.2" in b[0].text


def test_per_recipient_results_in_one_transaction():
    rec = Recorder("mx2", rcpt_replies={"bad@b.example": "550 5.1.1 no such user",
                                        "later@b.example": ["451 4.2.0 greylisted"]})
    handlers = {"mx2a": rec, "mx2b": rec}
    world, h, recs, q = build(handlers=handlers)
    submit(world, h["a"], q, ["ok@b.example", "bad@b.example", "later@b.example"])
    world.run(until=60)
    assert rec.transactions == 1 and rec.rcpts() == ["ok@b.example"]
    assert [e.rcpt for e in kinds(world, ev.Relayed)] == ["ok@b.example"]
    assert [(e.rcpt, e.code) for e in kinds(world, ev.Bounced)] == [("bad@b.example", 550)]
    assert [(e.rcpt, e.code) for e in kinds(world, ev.Deferred)] == [("later@b.example", 451)]
    # The three outcomes were recorded at one instant, as one batch.
    assert len({e.t for e in kinds(world, ev.Relayed) + kinds(world, ev.Bounced)
                + kinds(world, ev.Deferred)}) == 1
    world.run(until=400)      # the greylisted one is retried and passes
    assert rec.rcpts() == ["ok@b.example", "later@b.example"]


def test_5xx_to_data_bounces_and_4xx_to_data_falls_back():
    handlers = {"mx2a": Recorder("a", data_reply="554 5.7.1 rejected content"),
                "mx2b": Recorder("b", data_reply="554 5.7.1 rejected content")}
    world, h, recs, q = build(handlers=handlers)
    submit(world, h["a"], q, ["u@b.example"])
    world.run(until=60)
    assert [e.code for e in kinds(world, ev.Bounced)] == [554]
    handlers = {"mx2a": Recorder("a", data_reply="452 4.3.1 full"),
                "mx2b": Recorder("b", data_reply="452 4.3.1 full")}
    world, h, recs, q = build(handlers=handlers, delivery=DeliveryConfig(max_sessions=3))
    submit(world, h["a"], q, ["u@b.example"])
    world.run(until=60)
    assert [e.dest_host for e in kinds(world, ev.Relayed)] == ["mx3.b.example"]


def test_connections_are_reused_per_destination():
    world, h, recs, q = build(listening=("mx1",))
    for i in range(5):       # one after the other, within the idle timeout
        submit(world, h["a"], q, [f"u{i}@b.example"])
        world.run(until=world.now() + 1)
    world.run(until=60)
    assert len(recs["mx1"].messages) == 5
    connects = kinds(world, ev.ConnectAttempt, purpose="deliver")
    assert len(connects) == 1 and recs["mx1"].sessions == 1
    # After the idle timeout the cached connection is closed; the next
    # message opens a new one and still gets through.
    world.run(until=120)
    submit(world, h["a"], q, ["late@b.example"])
    world.run(until=180)
    assert recs["mx1"].rcpts()[-1] == "late@b.example"
    assert len(kinds(world, ev.ConnectAttempt, purpose="deliver")) == len(connects) + 1


def test_routes_override_mx_lookup():
    # The feed delivers c.example to its client's address; everything else
    # goes to a smart host.
    routes = {"c.example": Route(("192.0.2.31",)), "*": Route(("mx2a.b.example",))}
    world, h, recs, q = build(delivery=DeliveryConfig(routes=routes))
    submit(world, h["a"], q, ["x@c.example"])
    submit(world, h["a"], q, ["y@elsewhere.example"])
    world.run(until=60)
    assert recs["mx3"].rcpts() == ["x@c.example"]
    assert recs["mx2a"].rcpts() == ["y@elsewhere.example"]


def _close_order(seed: int) -> list[int]:
    """Client ports, in the order the next hop saw 12 open transactions die
    when the sender's Deliverer.close() ran."""
    import asyncio

    import aiosmtplib
    from aiosmtpd.smtp import SMTP

    lost: list[int] = []

    class Tracking(SMTP):
        def connection_lost(self, exc):
            lost.append(self.transport.get_extra_info("peername")[1])
            super().connection_lost(exc)

    world = World(seed=seed)
    a = world.add_host("a.example", "192.0.2.1")
    mx = world.add_host("mx.c.example", "192.0.2.40")
    world.set_zones(zones({"c.example": ["@ MX 10 mx", "mx A 192.0.2.40"],
                           "a.example": ["@ A 192.0.2.1"]}))
    slow = Recorder("slow", delay=1000.0)       # DATA hangs: transactions stay open

    async def listen():
        loop = asyncio.get_running_loop()
        return await loop.create_server(lambda: Tracking(slow, hostname=mx.name), port=25)

    world.run_until_complete(mx, listen())
    q = queue_for(a, config=QueueConfig(retry=FixedSchedule(), max_deliveries=50))
    world.run_until_complete(a, q.start())

    async def submit_all():
        for i in range(12):
            await q.submit("a@a.example", [f"u{i}@c.example"], MSG)
        # Stir the allocator so the clients about to be made do not simply
        # get rising addresses (an id()-ordered close would then look right).
        spare = sorted((aiosmtplib.SMTP(hostname="x") for _ in range(64 + 7 * seed)), key=id)
        while spare:
            spare.pop(0)

    world.run_until_complete(a, submit_all())
    world.run(until=30)
    assert len(kinds(world, ev.ConnectAttempt, purpose="deliver")) == 12 and lost == []

    async def close():
        q.deliverer.close()

    world.run_until_complete(a, close())
    world.run(until=60)
    return lost


def test_close_ends_transactions_in_the_order_they_started():
    """Deliverer.close() (crash, shutdown) resets in-flight transactions
    oldest first, so what the next hops see never depends on memory
    addresses (it used to iterate ``sorted(id(client))``)."""
    for seed in range(6):
        lost = _close_order(seed)
        assert len(lost) == 12
        assert lost == sorted(lost), seed     # client ports rise in connect order


def test_the_client_does_what_the_reply_table_says(monkeypatch):
    """The client looks each reply up in mta.delivery.reply_rules: with the
    rule for a 4xx to RCPT changed from defer to next-mx, the greylisted
    recipient moves on to the next address in the same round (by default
    it is deferred after the first)."""
    from mta.delivery import reply_rules as rr
    monkeypatch.setitem(rr.RULES, (rr.Stage.RCPT, rr.ReplyClass.TRANSIENT), rr.Action.NEXT_MX)
    grey = Recorder("grey", rcpt_replies={"u@b.example": "450 4.2.0 greylisted"})
    world, h, recs, q = build(handlers={"mx2a": grey, "mx2b": grey})
    submit(world, h["a"], q, ["u@b.example"])
    world.run(until=60)
    tried = [e.dest_host for e in kinds(world, ev.ConnectAttempt, purpose="deliver", outcome="connected")]
    assert sorted(tried) == ["mx2a.b.example", "mx2b.b.example"]      # both, in one round
    (d,) = kinds(world, ev.Deferred)                 # then the session limit: deferred
    assert d.code == 450 and d.dest_host == tried[-1]
