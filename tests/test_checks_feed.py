"""SMTP feed checks: two-day queue, 20 s latency, lock-down."""
from __future__ import annotations

from sim.evidence.checks import run_check
from sim.evidence.checks.feed import percentile
from sim.evidence.handlog import LogBuilder

A = "a@client.example"
FEED, CL = "feed.example", "mail.client.example"
H = 3600.0


def offline_log(down_hours, retry_every=H, lifetime_h=48, end_h=80):
    """The client is down from 0 for ``down_hours``; one message queued at 10 s."""
    L = LogBuilder()
    L.link(0, CL, False)
    L.accept(10, FEED, "f/m1", "t1", [A])
    t, done = 10.0, False
    while t < end_h * H and not done:
        L.attempt(t, FEED, "f/m1", "t1", [A], CL)
        if t >= down_hours * H:
            L.accept(t + 1, CL, "c/m1", "t1", [A], client_ip="192.0.2.1")
            L.relay(t + 1, FEED, "f/m1", "t1", A, CL)
            done = True
        elif t + retry_every > 10 + lifetime_h * H:
            L.bounce(10 + lifetime_h * H, FEED, "f/m1", "t1", A, code=451, text="4.4.7 expired",
                     reason="expired")
            done = True
        else:
            L.defer(t + 30, FEED, "f/m1", "t1", A, t + retry_every)
        t += retry_every
    L.link(down_hours * H, CL, True)
    L.events.sort(key=lambda e: e.t)
    return L.end(end_h * H)


P = {"feed": FEED, "client": CL}


def test_feed_queue_2d_delivers_after_36h_and_bounces_after_60h():
    assert run_check("feed-queue-2d", offline_log(36), P).status == "pass"
    assert run_check("feed-queue-2d", offline_log(60), P).status == "pass"


def test_feed_queue_2d_fails_on_early_bounce_or_long_gap():
    r = run_check("feed-queue-2d", offline_log(60, lifetime_h=24), P)
    assert r.status == "fail" and "before the 172800 s lifetime" in r.counterexamples[0]["why"]
    r = run_check("feed-queue-2d", offline_log(36, retry_every=3 * H), P)
    assert r.status == "fail" and "longest allowed 3600" in r.counterexamples[0]["why"]
    assert not run_check("feed-queue-2d", LogBuilder().end(1), P).decided


def test_feed_queue_2d_judges_only_the_named_clients_copies():
    """A feed serves many clients: an early bounce of another client's mail
    must not fail this client's check, and must fail that client's."""
    log = offline_log(36)
    other = LogBuilder()
    other.accept(20, FEED, "f/m2", "t2", ["b@other.example"])
    other.attempt(20, FEED, "f/m2", "t2", ["b@other.example"], "mail.other.example")
    other.bounce(3600, FEED, "f/m2", "t2", "b@other.example", code=550, text="5.1.1 no",
                 reason="rejected")
    other.link(0, "mail.other.example", False)
    merged = sorted(log[:-1] + other.events, key=lambda e: e.t) + [log[-1]]
    assert run_check("feed-queue-2d", merged, P).status == "pass"
    r = run_check("feed-queue-2d", merged, {"feed": FEED, "client": "mail.other.example"})
    assert r.status == "fail" and r.counterexamples[0]["rcpt"] == "b@other.example"


def latency_log(lat):
    L = LogBuilder()
    for i, d in enumerate(lat):
        t = 100.0 * i
        L.accept(t, FEED, f"f/m{i}", f"t{i}", [A])
        L.attempt(t, FEED, f"f/m{i}", f"t{i}", [A], CL)
        L.accept(t + d, CL, f"c/m{i}", f"t{i}", [A], client_ip="192.0.2.1")
        L.relay(t + d, FEED, f"f/m{i}", f"t{i}", A, CL)
    return L.end(10000)


def test_feed_latency():
    r = run_check("feed-latency-20s", latency_log([1, 2, 3, 50, 60]), P)
    assert r.status == "pass" and "p50=3.000s" in r.detail and "max=60.000s" in r.detail
    r = run_check("feed-latency-20s", latency_log([1, 30, 40]), P)
    assert r.status == "fail" and "median above 20" in r.detail
    assert r.counterexamples[0]["why"] == "latency 40.000 s"
    assert not run_check("feed-latency-20s", LogBuilder().end(1), P).decided


def test_percentile_hand_values():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5], 99) == 5
    assert percentile([0, 10], 90) == 9


def lock_log(stranger_code=554, feed_code=220):
    L = LogBuilder()
    L.reply(0, CL, "c/c1", "203.0.113.5", "CONNECT", "", stranger_code, "5.7.1 go away")
    L.reply(1, CL, "c/c2", "192.0.2.1", "CONNECT", "", feed_code, "hello")
    return L.end(10)


def test_feed_lockdown():
    p = {"client": CL, "allowed": ["192.0.2.1", "127.0.0.0/8", "10.0.0.0/24"]}
    assert run_check("feed-lockdown", lock_log(), p).status == "pass"
    r = run_check("feed-lockdown", lock_log(stranger_code=220), p)
    assert r.status == "fail" and "stranger 203.0.113.5" in r.counterexamples[0]["why"]
    r = run_check("feed-lockdown", lock_log(feed_code=554), p)
    assert r.status == "fail" and "allowed client 192.0.2.1" in r.counterexamples[0]["why"]
    assert not run_check("feed-lockdown", lock_log(), dict(p, allowed=["0.0.0.0/0"])).decided


def test_feed_queue_2d_judges_copies_never_attempted():
    """A copy the feed queued for the client's domain and bounced without
    ever trying the client is judged too (the domain is known from the
    client's own acceptances)."""
    log = offline_log(36)
    L = LogBuilder()
    L.accept(20, FEED, "f/m2", "t2", ["b@client.example"])
    L.bounce(3600, FEED, "f/m2", "t2", "b@client.example", code=550, text="5.1.1 no",
             reason="rejected")
    merged = sorted(log[:-1] + L.events, key=lambda e: e.t) + [log[-1]]
    r = run_check("feed-queue-2d", merged, P)
    assert r.status == "fail" and r.judged == 2
    assert r.counterexamples[0]["rcpt"] == "b@client.example"
    assert "bounced after" in r.counterexamples[0]["why"]


def _extended(log, t, lifetime, domain="client.example"):
    from mta import events as E
    ext = E.QueueLifetimeSet(t=t, host=FEED, domain=domain, lifetime=lifetime, previous=48 * H)
    return sorted(log[:-1] + [ext], key=lambda e: e.t) + [log[-1]]


def test_feed_queue_2d_uses_the_operators_extended_lifetime():
    """Down 72 h, the queue extended to 4 days at 40 h: delivered after the
    2 days passes and is counted (without the extension the same delivery
    is too late); a bounce at 2 days then fails, naming the new lifetime;
    an extension for another domain changes nothing."""
    late = _extended(offline_log(72, lifetime_h=96, end_h=100), 40 * H, 96 * H)
    r = run_check("feed-queue-2d", late, P)
    assert r.status == "pass" and "1 delivered after 172800 s" in r.detail
    r = run_check("feed-queue-2d", offline_log(72, lifetime_h=96, end_h=100), P)
    assert r.status == "fail" and "past the 172800 s lifetime" in r.counterexamples[0]["why"]
    bounced = _extended(offline_log(100, end_h=100), 40 * H, 96 * H)
    r = run_check("feed-queue-2d", bounced, P)
    assert r.status == "fail" and "before the 345600 s lifetime" in r.counterexamples[0]["why"]
    other = _extended(offline_log(100, end_h=100), 40 * H, 96 * H, domain="other.example")
    assert run_check("feed-queue-2d", other, P).status == "pass"
