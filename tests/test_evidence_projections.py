"""Projections on a small hand-built log, answers worked out by hand.

The story (times in seconds; d = example.org, primary mx1, secondary mx2):
  0     mx1's link goes down
  100   mx2 accepts t1 (m1) for a@d, b@d          -> mx2 queue: m1 a, m1 b
  200   mx2 accepts t2 (m2) for c@d               -> mx2 queue: + m2 c
  300   mx2 tries mx1 (timeout), defers m1 a,b until 600
  1000  mx1's link comes up
  1100  mx2 relays t1 a to mx1, which accepts it   -> mx2: m1 b, m2 c; mx1: m1' a
  1200  mx1 delivers a to its mailbox              -> mx1: empty
  1300  mx2 bounces b (DSN to the sender)          -> mx2: m2 c
  1500  mx2 relays t2 c to mx1 (queued there)      -> mx2: empty; mx1: m2' c
  2000  mx1's link goes down again; run ends 3000
"""
from __future__ import annotations

import pytest

from sim.evidence.handlog import LogBuilder
from sim.evidence.lifecycle import (
    BOUNCED, DELIVERED, LOST, QUEUED, RELAYED, RELAYED_OUT, Counts, in_domain, lifecycles,
    outcomes)
from sim.evidence.links import link_periods, smtp_transactions
from sim.evidence.model import Evidence, percentile
from sim.evidence.queue_replay import queue_depths, queue_intervals, replay

A, B, C = "a@example.org", "b@example.org", "c@example.org"
MX1, MX2 = "mx1.example", "mx2.example"


def story():
    L = LogBuilder("projections", seed=1)
    L.link(0, MX1, False)
    L.accept(100, MX2, "mx2/m1", "t1", [A, B])
    L.accept(200, MX2, "mx2/m2", "t2", [C])
    L.attempt(300, MX2, "mx2/m1", "t1", [A, B], MX1, pref=10, outcome="timeout")
    L.defer(330, MX2, "mx2/m1", "t1", A, 600)
    L.defer(330, MX2, "mx2/m1", "t1", B, 600)
    L.link(1000, MX1, True)
    L.attempt(1100, MX2, "mx2/m1", "t1", [A], MX1, pref=10)
    L.accept(1100, MX1, "mx1/m1", "t1", [A], client_ip="192.0.2.20")
    L.relay(1100, MX2, "mx2/m1", "t1", A, MX1)
    L.deliver(1200, MX1, "mx1/m1", "t1", A)
    L.bounce(1300, MX2, "mx2/m1", "t1", B)
    L.attempt(1500, MX2, "mx2/m2", "t2", [C], MX1, pref=10)
    L.accept(1500, MX1, "mx1/m2", "t2", [C], client_ip="192.0.2.20")
    L.relay(1500, MX2, "mx2/m2", "t2", C, MX1)
    L.link(2000, MX1, False)
    return L.end(3000)


def q(state, host):
    return [(e.msg, e.rcpt) for e in state.queues.get(host, [])]


@pytest.mark.parametrize("t, mx2, mx1, link", [
    (-1, [], [], "up"),
    (50, [], [], "down"),
    (100, [("mx2/m1", A), ("mx2/m1", B)], [], "down"),
    (250, [("mx2/m1", A), ("mx2/m1", B), ("mx2/m2", C)], [], "down"),
    (1100, [("mx2/m1", B), ("mx2/m2", C)], [("mx1/m1", A)], "up"),
    (1250, [("mx2/m1", B), ("mx2/m2", C)], [], "up"),
    (1600, [], [("mx1/m2", C)], "up"),
    (2500, [], [("mx1/m2", C)], "down"),
])
def test_replay_matches_hand_computed_queues(t, mx2, mx1, link):
    state = replay(story(), t)
    assert q(state, MX2) == mx2
    assert q(state, MX1) == mx1
    assert state.links == {(MX1, MX1): link}


def test_replay_tracks_attempts_and_next_attempt():
    state = replay(story(), 500)
    a = state.queues[MX2][0]
    assert (a.rcpt, a.attempts, a.next_attempt, a.since) == (A, 1, 600.0, 100.0)
    assert replay(story(), 250).queues[MX2][0].attempts == 0


def test_lifecycle_fates():
    fates = {(lf.host, lf.msg, lf.rcpt): lf.fate for lf in lifecycles(story())}
    assert fates == {
        (MX2, "mx2/m1", A): RELAYED, (MX2, "mx2/m1", B): BOUNCED,
        (MX2, "mx2/m2", C): RELAYED, (MX1, "mx1/m1", A): DELIVERED,
        (MX1, "mx1/m2", C): QUEUED,
    }
    life = next(lf for lf in lifecycles(story()) if lf.msg == "mx2/m1" and lf.rcpt == A)
    assert [a.t for a in life.attempts] == [300, 1100]
    assert [d.t for d in life.deferrals] == [330]
    assert life.next_hop == MX1 and life.fate_t == 1100


def test_outcomes_and_counts():
    outs = {(o.trace, o.rcpt): o for o in outcomes(story())}
    assert outs[("t1", A)].fate == DELIVERED and outs[("t1", A)].latency == 1100
    assert outs[("t1", A)].hops == [MX2, MX1]
    assert outs[("t1", B)].fate == BOUNCED
    assert outs[("t2", C)].fate == QUEUED
    c = Evidence(story()).counts
    assert c == Counts(accepted=3, delivered=1, bounced=1, queued=1, dsns=1)
    assert c.to_dict() == {"accepted": 3, "delivered": 1, "bounced": 1, "discarded": 0,
                           "queued": 1, "relayed_out": 0, "lost": 0, "duplicates": 0,
                           "dsns": 1}


def test_relay_to_host_outside_log_and_lost():
    L = LogBuilder()
    L.accept(1, MX2, "m1", "t1", [A, B], queue=[A])
    L.relay(2, MX2, "m1", "t1", A, "elsewhere.example")
    ev = L.end(10)
    fates = {lf.rcpt: lf.fate for lf in lifecycles(ev)}
    assert fates == {A: RELAYED_OUT, B: LOST}
    c = Evidence(ev).counts
    assert (c.lost, c.relayed_out) == (1, 1)


def test_queue_depths():
    d = queue_depths(story())
    assert d[MX2] == [(100, 2), (200, 3), (1100, 2), (1300, 1), (1500, 0)]
    assert d[MX1] == [(1100, 1), (1200, 0), (1500, 1)]


def test_link_periods_cover_the_run():
    ps = [(p.state, p.start, p.end) for p in link_periods(story())]
    assert ps == [("down", 0, 1000), ("up", 1000, 2000), ("down", 2000, 3000)]


def test_link_state_before_first_event_is_inferred():
    L = LogBuilder()
    L.link(500, "dial.example", True)
    ev = L.end(1000)
    assert [(p.state, p.start, p.end) for p in link_periods(ev)] == [
        ("down", 0, 500), ("up", 500, 1000)]
    assert replay(ev, 100).links == {("dial.example", "dial.example"): "down"}


def test_smtp_transactions():
    tx = smtp_transactions(story())
    assert len(tx) == 4
    first = tx[0]
    assert (first.host, first.client_ip, first.helo, first.accepted) == (
        MX2, "192.0.2.1", "client.example", ["mx2/m1"])
    assert [r.command for r in first.replies] == [
        "CONNECT", "EHLO", "MAIL", "RCPT", "RCPT", "DATA", "DATA_END", "QUIT"]
    assert first.close_reason == "quit"


def test_in_domain():
    assert in_domain("x@Mail.Example.org", "example.org")
    assert not in_domain("x@badexample.org", "example.org")


def test_queue_intervals_frame():
    df = queue_intervals(story())
    rows = [(r.host, r.msg, r.rcpt, r.enter, None if r.leave != r.leave else r.leave, r.left_by)
            for r in df.itertuples()]
    assert rows == [
        (MX2, "mx2/m1", A, 100.0, 1100.0, "relayed"),
        (MX2, "mx2/m1", B, 100.0, 1300.0, "bounced"),
        (MX2, "mx2/m2", C, 200.0, 1500.0, "relayed"),
        (MX1, "mx1/m1", A, 1100.0, 1200.0, "delivered_to_mailbox"),
        (MX1, "mx1/m2", C, 1500.0, None, ""),
    ]


# -- the evidence model -------------------------------------------------------------

def test_evidence_computes_each_projection_once():
    ev = Evidence(story())
    assert ev.lifecycles is ev.lifecycles and ev.outcomes is ev.outcomes
    assert [(lf.host, lf.msg, lf.rcpt) for lf in ev.lifecycles] == \
        [(lf.host, lf.msg, lf.rcpt) for lf in lifecycles(story())]
    assert ev.outcomes == outcomes(story())
    assert len(ev.mail_outcomes) == ev.counts.accepted == 3
    assert ev.latencies == [1100]
    assert ev.bounds == (0.0, 3000.0) and ev.down_periods(MX1) == [(0, 1000), (2000, 3000)]
    assert [lf.msg for lf in ev.lives_on(MX1)] == ["mx1/m1", "mx1/m2"]
    assert ev.attempts_of(MX2)[("mx2/m1", A)] == [300, 1100]
    assert ev.attempts_of("nobody.example") == {}


@pytest.mark.parametrize("t", [0, 100, 150, 200, 330, 1099, 1100, 1200, 1300, 1499, 1500, 3000])
def test_queued_at_agrees_with_replay(t):
    ev = Evidence(story())
    state = replay(story(), t)
    for host in (MX1, MX2):
        want = [(e.msg, e.rcpt, e.domain, e.since) for e in state.queues.get(host, [])]
        assert [(s.msg, s.rcpt, s.domain, s.enter) for s in ev.queued_at(host, t)] == want


def test_held_copies_match_the_domain_and_its_subdomains():
    L = LogBuilder()
    L.accept(10, MX2, "m1", "t1", ["x@sub.example.org", "y@other.example"],
             queue=["x@sub.example.org", "y@other.example"])
    ev = Evidence(L.end(100))
    assert [s.rcpt for s in ev.held_copies(MX2, "example.org", 50)] == ["x@sub.example.org"]
    assert ev.held_copies(MX2, "example.org", 5) == []


def test_percentile_interpolates():
    assert percentile([5.0], 90) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([4.0, 1.0, 3.0, 2.0], 100) == 4.0


def test_the_model_merges_kinds_back_into_log_order():
    from mta import events as E
    from sim.events import LinkDown, LinkUp
    log = story()
    ev = Evidence(log)
    kinds = (E.Queued, LinkUp, LinkDown, E.Relayed)
    assert ev.in_order(*kinds) == [e for e in log if isinstance(e, kinds)]
    assert ev.in_order(E.Queued) == ev.of(E.Queued) == [e for e in log if isinstance(e, E.Queued)]
    assert ev.in_order() == []
    # the copy events are exactly what the lifecycle fold needs: same lives from them
    assert [(lf.key, lf.fate, len(lf.events)) for lf in lifecycles(ev.copy_events)] == \
        [(lf.key, lf.fate, len(lf.events)) for lf in lifecycles(log)]
    assert MX1 in ev.hosts and MX2 in ev.hosts and "nowhere.example" not in ev.hosts


def test_judging_pauses_the_cycle_collector_and_puts_it_back():
    import gc

    from sim.evidence.model import collector_paused
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()       # it was off: it stays off
    finally:
        gc.enable()


def test_the_model_holds_the_log_it_is_given_and_lists_a_kind_when_asked():
    from mta import events as E
    log = story()
    ev = Evidence(log)
    assert ev.events is log                       # a week's log is not copied
    assert ev.of(E.Relayed) is ev.of(E.Relayed)   # listed once, on first ask
    assert ev.of(E.Relayed) == [e for e in log if isinstance(e, E.Relayed)]
    assert ev.of(E.Pop3Login) == []
    assert ev.queue_depths == queue_depths(story())


def test_a_copy_names_its_attempts_and_deferrals_from_its_story():
    from mta import events as E
    for lf in lifecycles(story()):
        assert list(lf.attempts) == [e for e in lf.events if isinstance(e, E.AttemptStarted)]
        assert list(lf.deferrals) == [e for e in lf.events if isinstance(e, E.Deferred)]
    life = next(lf for lf in lifecycles(story()) if lf.msg == "mx1/m1")
    assert life.attempts == () and life.deferrals == ()   # none: nothing allocated


def test_delivery_rounds_without_deferrals_start_at_the_earliest_attempt():
    from sim.evidence.checks.helpers import delivery_rounds
    lives = {(lf.msg, lf.rcpt): lf for lf in lifecycles(story())}
    assert delivery_rounds(lives[("mx2/m1", A)]) == [300, 1100]       # deferred once
    assert delivery_rounds(lives[("mx2/m2", C)]) == [1500]
    assert delivery_rounds(lives[("mx1/m1", A)]) == []


def test_releases_covering_a_domain_are_those_of_it_and_the_domains_above():
    from mta import events as E
    from sim.evidence.checks.retry import _Releases
    rel = [E.Released(t=t, host=h, domain=d, trigger="etrn", count=1)
           for t, h, d in [(10, MX2, "example.org"), (20, MX2, "sub.example.org"),
                           (30, MX1, "example.org"), (40, MX2, "org"), (50, MX2, "Example.ORG.")]]
    r = _Releases(rel)
    assert r.covering(MX2, "sub.example.org", 0) == [10, 20, 40, 50]
    assert r.covering(MX2, "sub.example.org", 20) == [20, 40, 50]
    assert r.covering(MX2, "other.net", 0) == [] and r.covering("mx9.example", "org", 0) == []
    assert r.covering(MX2, "sub.example.org", 15) == [20, 40, 50]   # asked again: same
