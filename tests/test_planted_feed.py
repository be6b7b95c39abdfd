"""Planted faults in real logs for the SMTP feed's checks (issue 10 item 6).

Each test runs a library feed scenario, checks that the expectation holds
on the real log, plants the one fault the check exists for, and asserts the
check then fails naming the copy, triplet or connection planted."""
from __future__ import annotations

import dataclasses
from functools import lru_cache
from pathlib import Path

import pytest

from mta import events as E
from mta.delivery.dsn import ACTION_FAILED, CONTENT_TYPE
from sim.evidence.checks import run_check
from sim.pipeline import load, run_scenario

LIBRARY = Path(__file__).resolve().parents[1] / "scenarios"
FEED = "feed.provider.example"


@lru_cache(maxsize=None)
def real_log(name: str) -> tuple[E.Event, ...]:
    return tuple(run_scenario(load(LIBRARY / f"{name}.yaml"), write=False).events)


def params_of(name: str, guarantee: str, **match) -> dict:
    """The library scenario's own parameters for ``guarantee``."""
    for e in load(LIBRARY / f"{name}.yaml").expectations:
        if e.guarantee == guarantee and all(e.params.get(k) == v for k, v in match.items()):
            return dict(e.params)
    raise LookupError(guarantee)


def judged(name: str, guarantee: str, events, **match):
    return run_check(guarantee, list(events), params_of(name, guarantee, **match))


def replace(events, old, *new):
    """``events`` with ``old`` replaced by ``new`` (in its place)."""
    out = list(events)
    i = out.index(old)
    return out[:i] + list(new) + out[i + 1:]


def test_an_infected_message_relayed_fails_feed_virus_deleted():
    log = real_log("feed-defaults")
    assert judged("feed-defaults", "feed-virus-deleted", log).status == "pass"
    gone = next(e for e in log if isinstance(e, E.Discarded) and e.policy == "virus")
    relayed = [E.AttemptStarted(t=gone.t, host=gone.host, msg=gone.msg, trace=gone.trace,
                                rcpts=(gone.rcpt,), dest_host="mail.client.example",
                                dest_ip="198.51.100.20"),
               E.Relayed(t=gone.t, host=gone.host, msg=gone.msg, trace=gone.trace,
                         rcpt=gone.rcpt, dest_host="mail.client.example",
                         dest_ip="198.51.100.20")]
    r = judged("feed-defaults", "feed-virus-deleted", replace(log, gone, *relayed))
    assert r.status == "fail"
    assert any(c["msg"] == gone.msg and "not discarded" in c["why"] for c in r.counterexamples)
    assert any(c["msg"] == gone.msg and "still sent on" in c["why"] for c in r.counterexamples)


def test_a_greylisted_first_attempt_accepted_fails_feed_greylisting():
    log = real_log("feed-defaults")
    assert judged("feed-defaults", "feed-greylisting", log).status == "pass"
    first = next(e for e in log if isinstance(e, E.SmtpReply) and e.host == FEED
                 and e.command == "RCPT" and e.code == 450 and "Greylisted" in e.text)
    planted = dataclasses.replace(first, code=250, text="2.1.5 Ok")
    r = judged("feed-defaults", "feed-greylisting", replace(log, first, planted))
    assert r.status == "fail"
    assert any("accepted at its first attempt" in c["why"] and c["times"] == [first.t]
               for c in r.counterexamples)


def test_high_spam_delivered_unchanged_fails_feed_spam_levels():
    """feed2 deletes high spam: a high message whose verdict says it was
    left alone and that was relayed is named twice (action, no deletion);
    feed1 tags high spam's subject: a high verdict with action none is named."""
    name, feed2 = "feed-spam-levels", "feed2.provider.example"
    log = real_log(name)
    assert judged(name, "feed-spam-levels", log, feed=feed2).status == "pass"
    v = next(e for e in log if isinstance(e, E.FilterVerdict) and e.host == feed2
             and e.level == "high" and e.action == "delete")
    gone = [e for e in log if isinstance(e, E.Discarded) and e.msg == v.msg]
    planted = replace(log, v, dataclasses.replace(v, action="none"))
    planted = [e for e in planted if e not in gone] + [
        E.AttemptStarted(t=v.t + 1, host=feed2, msg=v.msg, trace=v.trace,
                         rcpts=tuple(d.rcpt for d in gone), dest_host="mail.clients.example",
                         dest_ip="198.51.100.20")]
    r = judged(name, "feed-spam-levels", sorted(planted, key=lambda e: e.t), feed=feed2)
    whys = [c["why"] for c in r.counterexamples if c["msg"] == v.msg]
    assert r.status == "fail"
    assert "level high wants action delete, took none" in whys
    assert any(w.startswith("level high is deleted, but") for w in whys)

    feed1 = "feed1.provider.example"
    v1 = next(e for e in log if isinstance(e, E.FilterVerdict) and e.host == feed1
              and e.level == "high")
    r = judged(name, "feed-spam-levels", replace(log, v1, dataclasses.replace(v1, action="none")),
               feed=feed1)
    assert r.status == "fail" and [c["msg"] for c in r.counterexamples] == [v1.msg]
    assert r.counterexamples[0]["why"] == "level high wants action subject, took none"


@pytest.mark.slow     # a 4-5 day run
def test_a_copy_bounced_before_two_days_fails_feed_queue_2d():
    name, client = "feed-queue-2d", "mail.client-a.example"
    log = real_log(name)
    assert judged(name, "feed-queue-2d", log, client=client).status == "pass"
    # A copy for client A that waited out the outage: bounce it at 1 day instead.
    relay = next(e for e in log if isinstance(e, E.Relayed) and e.host == FEED
                 and e.dest_host == client and e.t > 42 * 3600)
    queued = next(e for e in log if isinstance(e, E.Queued) and e.msg == relay.msg
                  and e.rcpt == relay.rcpt)
    early = [E.Bounced(t=queued.t + 86400, host=FEED, msg=relay.msg, trace=relay.trace,
                       rcpt=relay.rcpt, code=451, text="4.4.7 expired", reason="expired",
                       dsn_trace="planted-dsn"),
             E.DsnCreated(t=queued.t + 86400, host=FEED, msg="planted/m1", trace="planted-dsn",
                          about_trace=relay.trace, to="sue@sender.example",
                          rcpts=(relay.rcpt,), action=ACTION_FAILED, content_type=CONTENT_TYPE)]
    planted = sorted(replace(log, relay, *early), key=lambda e: e.t)
    r = judged(name, "feed-queue-2d", planted, client=client)
    assert r.status == "fail"
    assert [(c["msg"], c["rcpt"]) for c in r.counterexamples] == [(relay.msg, relay.rcpt)]
    assert "before the 172800 s lifetime" in r.counterexamples[0]["why"]
    assert r.causes == {"bounced-early": 1}


@pytest.mark.slow     # a 4-5 day run
def test_a_stranger_accepted_at_connect_fails_feed_lockdown():
    name, client = "feed-queue-2d", "mail.client-a.example"
    log = real_log(name)
    assert judged(name, "feed-lockdown", log).status == "pass"
    refusal = next(e for e in log if isinstance(e, E.SmtpReply) and e.host == client
                   and e.command == "CONNECT" and e.code >= 400)
    planted = dataclasses.replace(refusal, code=220, text=f"{client} ESMTP")
    r = judged(name, "feed-lockdown", replace(log, refusal, planted))
    assert r.status == "fail"
    assert [c["times"] for c in r.counterexamples] == [[refusal.t]]
    assert refusal.client_ip in r.counterexamples[0]["why"]


def test_latency_stretched_fails_feed_latency_20s():
    """Every relay of an undisturbed copy 30 s later: the median passes 20 s."""
    name = "feed-defaults"
    log = real_log(name)
    assert judged(name, "feed-latency-20s", log).status == "pass"
    late = [dataclasses.replace(e, t=e.t + 30.0)
            if isinstance(e, E.Relayed) and e.host == FEED else e for e in log]
    r = judged(name, "feed-latency-20s", sorted(late, key=lambda e: e.t))
    assert r.status == "fail" and r.detail.startswith("median above 20 s")
    assert len(r.counterexamples) == 5
    assert all(float(c["why"].split()[1]) > 30 for c in r.counterexamples)


@pytest.mark.slow     # a 4-5 day run
def test_without_the_operators_extension_the_late_deliveries_fail_feed_queue_2d():
    """feed-queue-extended with its QueueLifetimeSet erased: the copies the
    extension kept are relayed past the 2-day lifetime, each named."""
    name = "feed-queue-extended"
    log = real_log(name)
    assert judged(name, "feed-queue-2d", log).status == "pass"
    erased = [e for e in log if not isinstance(e, E.QueueLifetimeSet)]
    r = judged(name, "feed-queue-2d", erased)
    assert r.status == "fail" and r.counterexamples
    assert all("past the 172800 s lifetime" in c["why"] for c in r.counterexamples)
    assert set(r.causes) == {"kept-past-lifetime"}


def test_without_the_switch_the_pop3_filing_fails_feed_queue_2d():
    """feed-pop3-switch with the switch to mailboxes erased: every copy
    filed into the feed's mailboxes was filed while on the SMTP feed; with
    the switch back erased instead, the relays after it were tried while
    the mailboxes were (as far as the log says) still active."""
    name = "feed-pop3-switch"
    log = real_log(name)
    assert judged(name, "feed-queue-2d", log).status == "pass"
    filed = {(e.msg, e.rcpt) for e in log
             if isinstance(e, E.DeliveredToMailbox) and e.host == FEED}
    no_switch = [e for e in log if not (isinstance(e, E.DeliveryModeSet) and e.mode == "mailboxes")]
    r = judged(name, "feed-queue-2d", no_switch)
    assert r.status == "fail" and r.detail.startswith(f"{len(filed)} feed queueing violations")
    assert {(c["msg"], c["rcpt"]) for c in r.counterexamples} <= filed
    assert all("while the domain was on the SMTP feed" in c["why"] for c in r.counterexamples)
    assert r.causes == {"both-services": len(filed)}
    no_back = [e for e in log if not (isinstance(e, E.DeliveryModeSet) and e.mode == "feed")]
    r = judged(name, "feed-queue-2d", no_back)
    assert r.status == "fail"
    assert all("while the domain was switched to POP3" in c["why"] for c in r.counterexamples)
