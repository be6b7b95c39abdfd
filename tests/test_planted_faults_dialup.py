"""Planted faults in real logs: the dial-up customer with backup exchangers
(connectivity probes, ETRN, finger SMTP-on-Demand, no bounce within the
lifetime).

As in :mod:`test_planted_faults_hosted`: the real run meets its
expectation, the planted fault (what a bug of that kind leaves in the log)
fails the check on evidence, named in a counterexample.
"""
from __future__ import annotations

import dataclasses

import pytest

from mta import events as E
from sim.evidence.model import Evidence
from helpers.planting import caught, every, first, held, insert, real_run, remove, rewrite

DOMAIN, GW = "dialup.example", "gw.dialup.example"
MX1, MX2, MX3 = "mx1.provider.example", "mx2.provider.example", "mx3.provider.example"


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    return real_run(tmp_path_factory, "connectivity-probe")


@pytest.fixture(scope="module")
def etrn(tmp_path_factory):
    return real_run(tmp_path_factory, "etrn-some-exchangers")


@pytest.fixture(scope="module")
def finger(tmp_path_factory):
    return real_run(tmp_path_factory, "smtp-on-demand-finger")


def _silence(events, host, t, span):
    """The release on ``host`` at ``t`` starts nothing: its Released and the
    host's attempts (and connections) of the next ``span`` seconds gone."""
    gone = [e for e in events if e.host == host and t <= e.t <= t + span
            and isinstance(e, (E.Released, E.AttemptStarted, E.ConnectAttempt))]
    assert any(isinstance(e, E.AttemptStarted) for e in gone)
    return first(gone, E.AttemptStarted), remove(events, gone)


# -- connectivity-probe -----------------------------------------------------------------

def test_connectivity_probe_catches_a_probe_that_never_fires(probe):
    """Bug: mx1's probe timer is not re-armed, so it misses the customer's
    first up period (its held mail waits for the next one)."""
    held(probe.judge("connectivity-probe"))
    interval = probe.expectation("connectivity-probe").params["probe_interval"]
    up = next(p for p in Evidence(probe.events).link_periods
              if p.host == GW and p.state == "up" and p.end - p.start >= 900)
    a, planted = _silence(probe.events, MX1, up.start, 900 + 1)
    hit = caught(probe.judge("connectivity-probe", planted), msg=a.msg, rcpt=a.rcpts[0],
                 host=MX1)
    assert "probe interval" in hit[0]["why"] and interval == "15m"


# -- dialup-no-bounce --------------------------------------------------------------------

def test_dialup_no_bounce_catches_a_held_copy_bounced_after_a_day(probe):
    """Bug: the exchanger gives held mail an ordinary sender's 1-day bounce
    limit instead of keeping it for the customer's 5 days."""
    held(probe.judge("dialup-no-bounce"))
    r = first(probe.events, E.Relayed, lambda e: e.host == MX2 and e.dest_host == GW)
    q = first(probe.events, E.Queued, lambda e: e.host == MX2 and e.msg == r.msg
              and e.rcpt == r.rcpt)
    assert q.held
    bounce = E.Bounced(t=q.t + 86400, host=MX2, msg=r.msg, trace=r.trace, rcpt=r.rcpt,
                       code=421, text="4.4.7 Message expired", reason="expired")
    planted = insert(remove(probe.events, [r]), bounce)
    hit = caught(probe.judge("dialup-no-bounce", planted), msg=r.msg, rcpt=r.rcpt, host=MX2)
    assert hit[0]["why"].startswith("bounced 86400 s after queueing")


def test_dialup_no_bounce_catches_held_mail_deleted_by_a_cleanup(probe):
    """Bug: a queue cleanup deletes held mail older than a day (Exim's
    ``timeout_frozen_after`` on held messages): neither stored nor bounced."""
    r = first(probe.events, E.Relayed, lambda e: e.host == MX2 and e.dest_host == GW)
    q = first(probe.events, E.Queued, lambda e: e.host == MX2 and e.msg == r.msg
              and e.rcpt == r.rcpt)
    gone = E.Discarded(t=q.t + 86400, host=MX2, msg=r.msg, trace=r.trace, rcpt=r.rcpt,
                       policy="expired", reason="held for more than 1d")
    planted = insert(remove(probe.events, [r]), gone)
    hit = caught(probe.judge("dialup-no-bounce", planted), msg=r.msg, rcpt=r.rcpt, host=MX2)
    assert hit[0]["why"].startswith("held copy discarded 86400 s after queueing")


# -- etrn-flush -------------------------------------------------------------------------------

def _first_etrn(run, host):
    return first(run.events, E.EtrnRequest, lambda e: e.host == host and 200 <= e.code < 300)


def test_etrn_flush_catches_an_etrn_that_starts_nothing(etrn):
    """Bug: mx1 answers 253 to ETRN but its queue run never starts."""
    held(etrn.judge("etrn-flush"))
    et = _first_etrn(etrn, MX1)
    a, planted = _silence(etrn.events, MX1, et.t, 60)
    hit = caught(etrn.judge("etrn-flush", planted), msg=a.msg, rcpt=a.rcpts[0], event=et)
    assert "not attempted within 60" in hit[0]["why"]


def test_etrn_flush_catches_an_etrn_refused_while_mail_is_held(etrn):
    """Bug: mx2 does not recognise the ``#queue`` node form and refuses it
    with 458, so nothing is released."""
    et = _first_etrn(etrn, MX2)
    refusal = dict(code=458, text="Unable to queue messages for node #dialup.example")
    _, planted = _silence(etrn.events, MX2, et.t, 60)
    planted = rewrite(planted, et, **refusal)
    refused = dataclasses.replace(et, **refusal)
    hit = caught(etrn.judge("etrn-flush", planted), host=MX2, event=refused)
    assert "answered 458" in hit[0]["why"]


def test_etrn_flush_catches_held_mail_sent_without_a_release(etrn):
    """Bug: mx3, which gets no ETRN, retries the held copies on its ordinary
    timer instead of waiting for its probe."""
    q = first(etrn.events, E.Queued, lambda e: e.host == MX3 and e.held)
    real = first(etrn.events, E.AttemptStarted, lambda e: e.host == MX3 and e.msg == q.msg)
    early = dataclasses.replace(real, t=q.t + 600)
    assert not any(q.t < r.t <= q.t + 600 for r in every(etrn.events, E.Released,
                                                           lambda e: e.host == MX3))
    hit = caught(etrn.judge("etrn-flush", insert(etrn.events, early)), msg=q.msg, rcpt=q.rcpt,
                 host=MX3)
    assert hit[0]["why"] == "held mail attempted without any release"


# -- smtp-on-demand-finger ----------------------------------------------------------------------

def test_finger_catches_a_query_that_starts_nothing(finger):
    """Bug: the finger daemon answers "delivery of 6 queued messages
    started" but never wakes the queue."""
    held(finger.judge("smtp-on-demand-finger"))
    fq = first(finger.events, E.FingerQuery, lambda e: e.host == MX1)
    a, planted = _silence(finger.events, MX1, fq.t, 60)
    hit = caught(finger.judge("smtp-on-demand-finger", planted), msg=a.msg, rcpt=a.rcpts[0],
                 event=fq)
    assert "finger query" in hit[0]["why"]


def test_finger_catches_a_forwarding_query_that_releases(finger):
    """Bug: the daemon drops the ``@host`` of a forwarding query and releases
    the domain's mail for it."""
    fq = first(finger.events, E.FingerQuery, lambda e: e.host == MX2 and e.released > 0)
    query = f"{DOMAIN}@{MX3}"
    planted = rewrite(finger.events, fq, query=query)
    hit = caught(finger.judge("smtp-on-demand-finger", planted), host=MX2)
    assert query in hit[0]["why"]
