"""Checks of the hosted-domain service: MX fallback, give-ups, the dial-up
primary, the queueing server, filters on every MX."""
from __future__ import annotations

import dataclasses

from mta import events as E
from sim.evidence.checks import run_check
from sim.evidence.handlog import LogBuilder

A, B = "a@example.org", "b@example.org"
MX1, MX2, S, QS, DS = ("mx1.example", "mx2.example", "sender.example", "queue.example",
                       "dialup.example")
FB = {"primary": MX1, "secondary": MX2}


def fallback_log(relay_at=4000, relayed=True, end=10000):
    L = LogBuilder()
    L.link(1000, MX1, False)
    L.submit(1500, S, "s/m1", "t1", [A])
    L.attempt(1500, S, "s/m1", "t1", [A], MX1, pref=10, outcome="timeout")
    L.attempt(1530, S, "s/m1", "t1", [A], MX2, pref=20)
    L.accept(1531, MX2, "mx2/m1", "t1", [A], client_ip="192.0.2.5")
    L.relay(1531, S, "s/m1", "t1", A, MX2)
    L.link(3000, MX1, True)
    if relayed:
        L.attempt(relay_at, MX2, "mx2/m1", "t1", [A], MX1, pref=10)
        L.accept(relay_at, MX1, "mx1/m1", "t1", [A], client_ip="192.0.2.20")
        L.relay(relay_at, MX2, "mx2/m1", "t1", A, MX1)
        L.deliver(relay_at + 1, MX1, "mx1/m1", "t1", A)
    return L.end(end)


def test_mx_fallback_passes():
    r = run_check("mx-fallback", fallback_log(), FB)
    assert r.status == "pass", r.detail


def test_mx_fallback_fails_when_secondary_keeps_the_mail():
    r = run_check("mx-fallback", fallback_log(relayed=False), FB)
    assert r.status == "fail" and "after mx1.example came back" in r.counterexamples[0]["why"]
    # ...but not while the grace period after the primary's return lasts
    assert run_check("mx-fallback", fallback_log(relayed=False), dict(FB, grace="3h")).status \
        == "pass"


def test_mx_fallback_fails_when_relayed_into_an_outage():
    r = run_check("mx-fallback", fallback_log(relay_at=2000), FB)
    assert r.status == "fail" and "while its link was down" in r.counterexamples[0]["why"]


def test_mx_fallback_fails_when_secondary_takes_nothing():
    L = LogBuilder()
    L.link(1000, MX1, False)
    L.submit(1500, S, "s/m1", "t1", [A])
    L.attempt(1500, S, "s/m1", "t1", [A], MX1, pref=10, outcome="timeout")
    L.defer(1530, S, "s/m1", "t1", A, 3000)
    r = run_check("mx-fallback", L.end(2000), FB)
    assert r.status == "fail" and r.decided and "accepted nothing" in r.counterexamples[0]["why"]


def test_mx_fallback_undecidable_without_outage():
    r = run_check("mx-fallback", LogBuilder().end(10), FB)
    assert not r.decided and "LinkDown" in r.detail


def giveup_log(bounce_at=100000, dsn=True, rounds=3):
    L = LogBuilder()
    L.link(0, MX1, False)
    L.submit(0, S, "s/m1", "t1", [A])
    for i in range(rounds):
        L.attempt(i * 3600, S, "s/m1", "t1", [A], MX1, pref=10, outcome="timeout")
        L.defer(i * 3600 + 30, S, "s/m1", "t1", A, (i + 1) * 3600)
    L.bounce(bounce_at, S, "s/m1", "t1", A, code=451, text="4.4.7 expired", reason="expired",
             dsn=dsn)
    return L.end(bounce_at + 10)


def test_sender_gives_up_visibly():
    r = run_check("sender-gives-up", giveup_log(), {"senders": [S]})
    assert r.status == "pass", r.detail
    # default senders: hosts that submitted mail
    assert run_check("sender-gives-up", giveup_log(), {}).status == "pass"


def test_sender_gives_up_silently_or_too_soon_fails():
    r = run_check("sender-gives-up", giveup_log(dsn=False), {})
    assert r.status == "fail" and "bounced-no-dsn" in r.counterexamples[0]["why"]
    r = run_check("sender-gives-up", giveup_log(bounce_at=600, rounds=1), {})
    assert r.status == "fail" and "gave up after 600 s and 1 rounds" in \
        r.counterexamples[0]["why"]


def test_sender_gives_up_judges_a_transient_failure_bounced_as_permanent():
    """A 5xx bounce right after a deferred round, with no server saying 5xx,
    is a give-up too (found by a planted fault in a real log)."""
    log = giveup_log(bounce_at=600, rounds=1)
    log = [dataclasses.replace(e, code=550, text="5.4.4 host not found", reason="unroutable")
           if isinstance(e, E.Bounced) else e for e in log]
    r = run_check("sender-gives-up", log, {})
    assert r.status == "fail" and "1 rounds" in r.counterexamples[0]["why"]
    # A 5xx answered by the MX in the last round is not a give-up.
    L = LogBuilder()
    L.submit(0, S, "s/m1", "t1", [A])
    L.attempt(10, S, "s/m1", "t1", [A], MX1, pref=10)
    L.bounce(11, S, "s/m1", "t1", A)
    assert run_check("sender-gives-up", L.end(20), {}).status == "pass"


def test_sender_gives_up_undecidable_when_everything_is_delivered():
    r = run_check("sender-gives-up", fallback_log(), {})
    assert not r.decided


def test_dialup_primary_loses_mail_is_violated_with_counts():
    r = run_check("dialup-primary-loses-mail", giveup_log(),
                  {"primary": MX1, "domain": "example.org"})
    assert r.status == "fail" and r.decided
    assert "1 recipients at example.org bounced" in r.detail
    assert "primary link down at give-up" in r.counterexamples[0]["why"]


def test_dialup_primary_holds_when_nothing_bounces():
    r = run_check("dialup-primary-loses-mail", fallback_log(),
                  {"primary": MX1, "domain": "example.org"})
    assert r.status == "pass"


def etrn_log(etrn_code=250, attempt_after=5, bounce=False):
    L = LogBuilder()
    L.link(0, DS, False)
    L.accept(100, QS, "qs/m1", "t1", [A], held=True)
    L.link(5000, DS, True)
    L.add(E.EtrnRequest(t=5010, host=QS, conn="qs/c9", client_ip="192.0.2.50",
                        argument="#example.org", code=etrn_code, text="Queuing started"))
    if etrn_code == 250:
        L.add(E.Released(t=5010, host=QS, domain="example.org", trigger="etrn", count=1,
                         client_ip="192.0.2.50"))
    L.attempt(5010 + attempt_after, QS, "qs/m1", "t1", [A], DS, pref=None)
    L.accept(5011 + attempt_after, DS, "ds/m1", "t1", [A], client_ip="192.0.2.30")
    L.relay(5011 + attempt_after, QS, "qs/m1", "t1", A, DS)
    if bounce:
        L.submit(6000, QS, "qs/m2", "t2", [B])
        L.bounce(6001, QS, "qs/m2", "t2", B, code=451, text="4.4.7", reason="expired")
    return L.end(7000)


QP = {"queue_server": QS, "delivery_server": DS, "domain": "example.org"}


def test_queueing_server_etrn_passes():
    r = run_check("queueing-server-etrn", etrn_log(), QP)
    assert r.status == "pass", r.detail


def test_queueing_server_etrn_fails_on_slow_release_or_bounce():
    r = run_check("queueing-server-etrn", etrn_log(attempt_after=300), QP)
    assert r.status == "fail" and "not attempted within 60" in r.counterexamples[0]["why"]
    r = run_check("queueing-server-etrn", etrn_log(bounce=True), QP)
    assert r.status == "fail" and r.counterexamples[0]["rcpt"] == B


def test_queueing_server_etrn_fails_on_a_refusal_while_mail_is_held():
    """Found by a planted fault in a real log: a 458 to the customer's ETRN
    while its mail is held releases nothing, and passed."""
    r = run_check("queueing-server-etrn", etrn_log(etrn_code=458), QP)
    assert r.status == "fail" and r.decided
    assert r.counterexamples[0]["why"] == \
        "ETRN answered 458 while 1 copies for example.org were held"


def test_queueing_server_undecidable_without_etrn():
    L = LogBuilder()
    L.accept(100, QS, "qs/m1", "t1", [A], held=True)
    assert not run_check("queueing-server-etrn", L.end(200), QP).decided


def spam_log(delivered: bool):
    L = LogBuilder()
    L.accept(10, MX2, "mx2/m9", "spam1", [A], client_ip="203.0.113.66")
    L.relay(11, MX2, "mx2/m9", "spam1", A, MX1)
    L.accept(11, MX1, "mx1/m9", "spam1", [A], client_ip="192.0.2.20")
    if delivered:
        L.deliver(12, MX1, "mx1/m9", "spam1", A)
    else:
        L.discard(12, MX1, "mx1/m9", "spam1", A, policy="ip-block", reason="listed")
    return L.end(100)


def test_filters_on_every_mx():
    p = {"mxs": [MX1, MX2], "blocked": ["203.0.113.0/24"]}
    assert run_check("filters-on-every-mx", spam_log(False), p).status == "pass"
    r = run_check("filters-on-every-mx", spam_log(True), p)
    assert r.status == "fail"
    assert r.counterexamples[0]["trace"] == "spam1"
    assert r.counterexamples[0]["hosts"] == [MX1, MX2]
    r = run_check("filters-on-every-mx", spam_log(True), dict(p, blocked=["198.18.0.1"]))
    assert not r.decided
