"""The queue's decisions, called directly: what is due at time t, and what
events a delivery round's outcome produces.  No loop, no store: state is
built by folding events, as the queue builds it."""
from __future__ import annotations

from dataclasses import replace

from mta import events as ev
from mta.delivery.client import BOUNCED, DEFERRED, RELAYED, RcptOutcome
from mta.queue.outcomes import (HELD_EXPIRED, Failure, bounce_events, expiry_failures, queued_events,
                                round_failed, settle, wants_dsn, warning_events)
from mta.queue.policy import QueueConfig, QueuePolicy
from mta.queue.scheduling import due_now, expires_at, next_due, warn_at
from mta.queue.state import QueueState
from helpers.queue import FixedSchedule

H = "q.example"
BODY = b"Subject: hi\r\nMessage-ID: <t1@a.example>\r\n\r\nbody\r\n"


def policy(**kw) -> QueuePolicy:
    return QueuePolicy(QueueConfig(retry=FixedSchedule(interval=300, lifetime=3600), **kw))


def queued(pol: QueuePolicy, rcpts: list[str], mail_from: str = "s@a.example", origin: str = "local"):
    """A state holding message q.example/m1, queued at t=0."""
    s = QueueState()
    s.apply(ev.MessageSubmitted(t=0.0, host=H, msg=f"{H}/m1", trace="t1@a.example", mail_from=mail_from,
                                rcpts=tuple(rcpts), size=len(BODY), origin=origin))
    for e in queued_events(H, f"{H}/m1", "t1@a.example", rcpts, 0.0, pol.held):
        s.apply(e)
    return s, s.messages[f"{H}/m1"]


def test_queued_events_once_per_recipient_and_held_by_policy():
    pol = policy(hold_domains=("dial.example",))
    events = queued_events(H, "m", "t", ["a@b.example", "u@dial.example", "a@b.example"], 5.0, pol.held)
    assert [(e.rcpt, e.domain, e.held, e.t) for e in events] == [
        ("a@b.example", "b.example", False, 5.0), ("u@dial.example", "dial.example", True, 5.0)]


def test_new_recipients_are_due_at_once_and_held_ones_at_expiry():
    pol = policy(hold_domains=("dial.example",))
    _, m = queued(pol, ["a@b.example", "u@dial.example"])
    assert next_due(m, 0.0, set(), pol) == 0.0
    due = due_now(m, 0.0, set(), pol)
    assert [r.rcpt for r in due.attempt] == ["a@b.example"] and due.expire == [] and due.warn == []
    # claimed by a running task: only the held one's expiry is left
    claimed = {(m.msg, "a@b.example")}
    assert next_due(m, 0.0, claimed, pol) == expires_at(m, m.rcpts["u@dial.example"], pol) == 3600.0
    assert due_now(m, 0.0, claimed, pol).attempt == []
    late = due_now(m, 3600.0, claimed, pol)
    assert [r.rcpt for r in late.expire] == ["u@dial.example"] and late.attempt == []


def test_deferred_recipient_due_at_its_next_attempt_and_interrupted_at_once():
    pol = policy()
    s, m = queued(pol, ["a@b.example"])
    s.apply(ev.Deferred(t=10.0, host=H, msg=m.msg, trace=m.trace, rcpt="a@b.example", code=451,
                        text="4.7.1 later", next_attempt=310.0))
    assert next_due(m, 10.0, set(), pol) == 310.0
    assert due_now(m, 309.0, set(), pol).attempt == []
    assert [r.rcpt for r in due_now(m, 310.0, set(), pol).attempt] == ["a@b.example"]
    s.apply(ev.AttemptStarted(t=310.0, host=H, msg=m.msg, trace=m.trace, rcpts=("a@b.example",),
                              dest_host="mx", dest_ip="192.0.2.1", attempt=2))
    # after a crash the attempt has no outcome: due again at once
    assert next_due(m, 400.0, set(), pol) == 400.0
    assert [r.rcpt for r in due_now(m, 400.0, set(), pol).attempt] == ["a@b.example"]


def test_delay_warning_once_never_for_null_sender_or_dsn():
    pol = QueuePolicy(QueueConfig(retry=FixedSchedule(interval=300, lifetime=3600, delay_warning=1800)))
    s, m = queued(pol, ["a@b.example"])
    assert warn_at(m, pol) == 1800.0
    # nothing waits yet (no deferral): no warning in the schedule
    assert due_now(m, 1800.0, set(), pol).warn == []
    s.apply(ev.Deferred(t=10.0, host=H, msg=m.msg, trace=m.trace, rcpt="a@b.example", code=451,
                        text="x", next_attempt=5000.0))
    assert next_due(m, 10.0, set(), pol) == 1800.0
    assert [r.rcpt for r in due_now(m, 1800.0, set(), pol).warn] == ["a@b.example"]
    s.apply(ev.DsnCreated(t=1800.0, host=H, msg=f"{H}/m2", trace="x", about_trace=m.trace, to=m.mail_from,
                          rcpts=("a@b.example",), action="delayed",
                          content_type="multipart/report; report-type=delivery-status", mail_from=""))
    assert warn_at(m, pol) is None
    assert warn_at(replace(m, warned=False, mail_from=""), pol) is None
    assert warn_at(replace(m, warned=False, origin="dsn"), pol) is None


def test_settle_relayed_deferred_and_bounced():
    pol = policy()
    _, m = queued(pol, ["ok@b.example", "later@b.example", "bad@b.example", "nomx@c.example"])
    got = settle(m, [RcptOutcome("ok@b.example", RELAYED, 250, "queued", "mx.b.example", "192.0.2.2"),
                     RcptOutcome("later@b.example", DEFERRED, 451, "4.7.1 later", "mx.b.example"),
                     RcptOutcome("bad@b.example", BOUNCED, 550, "5.1.1 unknown", "mx.b.example"),
                     RcptOutcome("nomx@c.example", BOUNCED, 556, "5.1.10 null MX"),
                     RcptOutcome("gone@b.example", RELAYED, 250, "discarded meanwhile")],
                 host=H, now=100.0, policy=pol)
    assert [type(e).__name__ for e in got.events] == ["Relayed", "Deferred"]
    assert got.events[1].next_attempt == 400.0 and got.events[1].dest_host == "mx.b.example"
    assert got.failed == [Failure("bad@b.example", 550, "5.1.1 unknown", "rejected", "mx.b.example"),
                          Failure("nomx@c.example", 556, "5.1.10 null MX", "null-mx", "")]
    unroutable = settle(m, [RcptOutcome("bad@b.example", BOUNCED, 550, "5.1.2 not found")],
                        host=H, now=1.0, policy=pol)
    assert unroutable.failed[0].reason == "unroutable"


def test_settle_gives_up_a_deferral_past_the_lifetime():
    pol = policy()
    _, m = queued(pol, ["later@b.example"])
    got = settle(m, [RcptOutcome("later@b.example", DEFERRED, 451, "4.7.1 later", "mx")],
                 host=H, now=3500.0, policy=pol)
    assert got.events == []
    assert got.failed == [Failure("later@b.example", 451, "4.7.1 later", "expired", "mx")]


def test_bounce_events_with_and_without_dsn():
    pol = policy()
    _, m = queued(pol, ["bad@b.example"])
    failed = [Failure("bad@b.example", 550, "5.1.1 unknown", "rejected", "mx.b.example")]
    events, bodies = bounce_events(m, failed, host=H, dsn_id=f"{H}/m2", original=BODY, now=9.0, held=pol.held)
    assert [type(e).__name__ for e in events] == ["Bounced", "DsnCreated", "MessageSubmitted", "Queued"]
    assert events[0].dsn_trace == f"m2@{H}" and events[3].rcpt == "s@a.example"
    assert list(bodies) == [f"{H}/m2"] and b"5.1.1 unknown" in bodies[f"{H}/m2"]
    _, null = queued(pol, ["bad@b.example"], mail_from="")
    assert not wants_dsn(null)
    events, bodies = bounce_events(null, failed, host=H, dsn_id="", original=b"", now=9.0, held=pol.held)
    assert [type(e).__name__ for e in events] == ["Bounced"] and events[0].dsn_trace == "" and bodies == {}


def test_expiry_and_warning_use_the_last_reply_or_a_default():
    pol = policy(hold_domains=("dial.example",))
    s, m = queued(pol, ["u@dial.example", "a@b.example"])
    s.apply(ev.Deferred(t=10.0, host=H, msg=m.msg, trace=m.trace, rcpt="a@b.example", code=452,
                        text="4.2.2 full", next_attempt=310.0, dest_host="mx"))
    held, deferred = m.rcpts["u@dial.example"], m.rcpts["a@b.example"]
    assert expiry_failures([held]) == [Failure("u@dial.example", *HELD_EXPIRED, "expired", "")]
    assert expiry_failures([deferred]) == [Failure("a@b.example", 452, "4.2.2 full", "expired", "mx")]
    events, bodies = warning_events(m, [held, deferred], host=H, dsn_id=f"{H}/m2", original=BODY,
                                    now=1800.0, held=pol.held, retry_until=3600.0)
    assert events[0].action == "delayed" and events[0].rcpts == ("u@dial.example", "a@b.example")
    assert b"4.4.7 Delivery delayed" in bodies[f"{H}/m2"] and b"4.2.2 full" in bodies[f"{H}/m2"]


def test_a_failed_round_defers_every_recipient():
    outs = round_failed(["a@b.example", "c@b.example"], KeyError("x"))
    assert [(o.status, o.code) for o in outs] == [(DEFERRED, 451), (DEFERRED, 451)]
    assert "KeyError" in outs[0].text
