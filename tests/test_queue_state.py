"""The queue's state is the fold of its events.

Unit checks of the fold functions, and the property that matters: after a
simulated run with deferrals, bounces, DSNs and deliveries, folding the
host's events from the run's log rebuilds exactly the manager's live state,
and the same seed gives the same log.
"""
from __future__ import annotations

from mta import events as ev
from mta.events import codec
from mta.delivery.client import RcptOutcome
from mta.queue import QueueConfig, QueueState
from mta.queue.message import ensure_message_id, message_id, split_headers
from sim.world.core import World
from test_queue_support import FixedSchedule, Recorder, queue_for, serve, zones


def test_fold_tracks_recipients_to_their_final_state():
    s = QueueState()
    s.apply(ev.MessageSubmitted(t=0.0, host="h", msg="h/m1", trace="t", mail_from="a@x",
                                rcpts=("u@b", "v@b", "w@b"), size=5))
    for r in ("u@b", "v@b", "w@b"):
        s.apply(ev.Queued(t=0.0, host="h", msg="h/m1", trace="t", rcpt=r, domain="b", held=(r == "w@b")))
    s.apply(ev.AttemptStarted(t=1.0, host="h", msg="h/m1", trace="t", rcpts=("u@b", "v@b"),
                              dest_host="mx", dest_ip="192.0.2.1", attempt=1))
    m = s.messages["h/m1"]
    assert m.rcpts["u@b"].in_flight and m.rcpts["w@b"].held and not m.rcpts["w@b"].in_flight
    s.apply(ev.Deferred(t=2.0, host="h", msg="h/m1", trace="t", rcpt="u@b", code=451, text="x",
                        next_attempt=300.0))
    assert (m.rcpts["u@b"].failures, m.rcpts["u@b"].first_failure, m.rcpts["u@b"].next_attempt) == (1, 2.0, 300.0)
    s.apply(ev.Relayed(t=2.0, host="h", msg="h/m1", trace="t", rcpt="v@b", dest_host="mx", dest_ip="192.0.2.1"))
    s.apply(ev.Discarded(t=3.0, host="h", msg="h/m1", trace="t", rcpt="w@b", policy="virus", reason="EICAR"))
    assert list(m.rcpts) == ["u@b"] and s.pending() == 1 and not s.finished
    s.apply(ev.Bounced(t=4.0, host="h", msg="h/m1", trace="t", rcpt="u@b", code=550, text="no",
                       reason="rejected"))
    assert s.messages == {} and s.finished == ["h/m1"]


def test_message_id_is_the_trace_and_is_added_when_missing():
    data, trace = ensure_message_id(b"Subject: x\r\n\r\nbody\r\n", "m1@h.example")
    assert trace == "m1@h.example" and message_id(data) == trace
    assert ensure_message_id(b"Message-Id:\r\n  <a@b>\r\n\r\n", "z") == (b"Message-Id:\r\n  <a@b>\r\n\r\n", "a@b")
    assert split_headers(b"A: 1\nB: 2\n\nbody") == (b"A: 1\nB: 2", b"body")


def run(seed: int):
    zone = {"b.example": ["@ MX 10 mx", "mx A 192.0.2.2"], "a.example": ["@ A 192.0.2.1"]}
    world = World(seed=seed)
    a = world.add_host("a.example", "192.0.2.1")
    b = world.add_host("mx.b.example", "192.0.2.2")
    world.set_zones(zones(zone))
    rec = Recorder("b", rcpt_replies={"bad@b.example": "550 5.1.1 unknown",
                                      "slow@b.example": "451 4.7.1 later"})
    world.run_until_complete(b, serve(rec, b.name))
    q = queue_for(a, config=QueueConfig(retry=FixedSchedule(interval=120), local_domains=("a.example",)))
    world.run_until_complete(a, q.start())
    for i in range(6):
        rcpts = [f"u{i}@b.example", "slow@b.example"] + (["bad@b.example"] if i % 2 else [])
        world.run_until_complete(a, q.submit("s@a.example", rcpts, b"Subject: s\r\n\r\nx\r\n"))
    world.run(until=200)        # mid-way: some recipients deferred, DSNs queued
    return world, a, q


def test_replaying_the_log_rebuilds_the_live_state():
    world, a, q = run(seed=9)
    assert q.state.pending() > 0
    rebuilt = QueueState().replay([e for e in world.events if e.host == a.name])
    assert {m: sorted(vars(r).items() for r in ms.rcpts.values()) for m, ms in rebuilt.messages.items()} == \
           {m: sorted(vars(r).items() for r in ms.rcpts.values()) for m, ms in q.state.messages.items()}
    world.run(until=4000)
    assert q.state.pending() == 0


def test_same_seed_same_log():
    logs = []
    for _ in range(2):
        world, a, q = run(seed=9)
        world.run(until=4000)
        logs.append([codec.to_dict(e) for e in world.events])
    assert logs[0] == logs[1]


def test_discard_records_the_policy_and_frees_the_store():
    world = World(seed=1)
    a = world.add_host("a.example", "192.0.2.1")
    q = queue_for(a, config=QueueConfig(retry=FixedSchedule(), hold_domains=("held.example",)))
    world.run_until_complete(a, q.start())
    msg = world.run_until_complete(a, q.submit("s@a.example", ["v@held.example"], b"X-Virus: yes\r\n\r\n"))
    assert q.store.load().bodies.keys() == {msg}
    world.run_until_complete(a, q.discard(msg, "v@held.example", policy="virus", reason="EICAR test signature"))
    d = [e for e in world.events if isinstance(e, ev.Discarded)]
    assert [(e.msg, e.policy) for e in d] == [(msg, "virus")]
    assert q.state.pending() == 0 and q.store.load().bodies == {} and q.store.load().events == []


def test_a_message_without_recipients_is_refused_not_kept_for_ever():
    import pytest

    world = World(seed=2)
    a = world.add_host("a.example", "192.0.2.1")
    q = queue_for(a)
    world.run_until_complete(a, q.start())
    with pytest.raises(ValueError, match="no recipients"):
        world.run_until_complete(a, q.submit("s@a.example", [], b"Subject: x\r\n\r\nx\r\n"))
    assert q.state.messages == {}
    assert q.store.load().events == [] and q.store.load().bodies == {}
    assert not [e for e in world.events if isinstance(e, ev.MessageSubmitted)]


def test_a_delivery_round_that_raises_is_reported_and_backs_off():
    """A bug or an unforeseen reply inside a delivery round is reported (a
    simulated run would stop there) and recorded as a transient failure on
    the normal schedule: a live queue must not retry at once, for ever."""
    world = World(seed=3)
    host = world.add_host("mta.example", "192.0.2.1")
    reported: list[dict] = []
    # Record instead of stopping the run, to see what the queue does next.
    world.scheduler.record_error = lambda loop, context: reported.append(context)
    q = queue_for(host, config=QueueConfig(retry=FixedSchedule(interval=300, lifetime=3600)))
    calls: list[float] = []

    async def faulty_deliver(**kw):
        calls.append(world.now())
        if len(calls) > 10:   # a spinning queue gets here at t=0: end the spin, fail below
            return [RcptOutcome(rcpt=r, status="deferred", code=451, text="4.4.0 stop")
                    for r in kw["rcpts"]]
        raise ValueError("unparsable reply")

    q.deliverer.deliver = faulty_deliver
    world.run_until_complete(host, q.start())
    world.run_until_complete(host, q.submit("a@mta.example", ["b@far.example"], b"Subject: x\r\n\r\nx\r\n"))
    world.run(until=1000)
    assert calls == [0.0, 300.0, 600.0, 900.0]
    assert len(reported) == 4 and isinstance(reported[0]["exception"], ValueError)
    deferred = [e for e in world.events if isinstance(e, ev.Deferred)]
    assert [(e.t, e.code, e.next_attempt) for e in deferred] == [
        (0.0, 451, 300.0), (300.0, 451, 600.0), (600.0, 451, 900.0), (900.0, 451, 1200.0)]
    assert deferred[0].text.startswith("4.3.0")
