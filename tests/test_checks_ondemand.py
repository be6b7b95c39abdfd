"""Dial-up customer checks: no bounce, probes, finger, ETRN flush."""
from __future__ import annotations

from mta import events as E
from sim.evidence.checks import run_check
from sim.evidence.handlog import LogBuilder

A = "a@dial.example"
X1, X2, CU = "bx1.example", "bx2.example", "mail.dial.example"


def held_log(release="etrn", delay=5, x2_early=False, bounce_at=None):
    """Both exchangers hold t1/t2 for dial.example; X1 gets the trigger at 5000."""
    L = LogBuilder()
    L.link(0, CU, False)
    L.accept(100, X1, "x1/m1", "t1", [A], held=True)
    L.accept(100, X2, "x2/m1", "t2", [A], held=True)
    L.link(4990, CU, True)
    if release == "etrn":
        L.add(E.EtrnRequest(t=5000, host=X1, conn="x1/c9", client_ip="192.0.2.30",
                            argument="dial.example", code=250, text="Queuing started"))
    elif release == "etrn-refused":
        L.add(E.EtrnRequest(t=5000, host=X1, conn="x1/c9", client_ip="192.0.2.30",
                            argument="dial.example", code=458, text="Unable"))
    elif release == "finger":
        L.add(E.FingerQuery(t=5000, host=X1, conn="x1/f1", client_ip="192.0.2.30",
                            query="dial.example", answer="1 message", released=1))
    if release in ("etrn", "finger"):
        L.add(E.Released(t=5000, host=X1, domain="dial.example", trigger=release, count=1,
                         client_ip="192.0.2.30"))
    L.attempt(5000 + delay, X1, "x1/m1", "t1", [A], CU)
    L.accept(5001 + delay, CU, "cu/m1", "t1", [A], client_ip="192.0.2.11")
    L.relay(5001 + delay, X1, "x1/m1", "t1", A, CU)
    if x2_early:
        L.attempt(5002, X2, "x2/m1", "t2", [A], CU)
    if bounce_at:
        L.bounce(bounce_at, X2, "x2/m1", "t2", A, code=451, text="4.4.7 expired", reason="expired")
    return L.end(8000)


EX = {"exchangers": [X1, X2], "domain": "dial.example"}


def test_etrn_flush_passes():
    r = run_check("etrn-flush", held_log(), EX)
    assert r.status == "pass", r.detail


def test_etrn_flush_fails_on_slow_release_refusal_or_unreleased_exchanger():
    r = run_check("etrn-flush", held_log(delay=120), EX)
    assert r.status == "fail" and "not attempted within 60" in r.counterexamples[0]["why"]
    r = run_check("etrn-flush", held_log(release="etrn-refused"), EX)
    assert r.status == "fail" and "answered 458" in r.counterexamples[0]["why"]
    r = run_check("etrn-flush", held_log(x2_early=True), EX)
    assert r.status == "fail"
    assert r.counterexamples[-1]["why"] == "held mail attempted without any release"
    assert not run_check("etrn-flush", held_log(release="finger"), EX).decided


def test_etrn_at_form_covers_subdomains():
    ev = held_log()
    ev = [E.EtrnRequest(t=e.t, host=e.host, conn=e.conn, client_ip=e.client_ip,
                        argument="@example", code=e.code, text=e.text)
          if isinstance(e, E.EtrnRequest) else e for e in ev]
    assert run_check("etrn-flush", ev, EX).status == "pass"


def test_finger():
    assert run_check("smtp-on-demand-finger", held_log(release="finger"), EX).status == "pass"
    r = run_check("smtp-on-demand-finger", held_log(release="finger", delay=300), EX)
    assert r.status == "fail"
    ev = held_log(release="finger")
    ev.insert(-1, E.FingerQuery(t=7000, host=X1, conn="x1/f2", client_ip="192.0.2.30",
                                query="dial.example@other", answer="no", released=2))
    r = run_check("smtp-on-demand-finger", ev, EX)
    assert r.status == "fail" and "forwarding query" in r.counterexamples[0]["why"]
    assert not run_check("smtp-on-demand-finger", held_log(), EX).decided


def test_connectivity_probe():
    p = {"exchangers": [X1], "customer": CU, "domain": "dial.example", "probe_interval": 900}
    assert run_check("connectivity-probe", held_log(release="none", delay=600), p).status == "pass"
    r = run_check("connectivity-probe", held_log(release="none", delay=1200), p)
    assert r.status == "fail" and "probe interval 900" in r.counterexamples[0]["why"]
    # an up period shorter than the interval proves nothing
    assert not run_check("connectivity-probe", held_log(release="none", delay=600),
                         dict(p, probe_interval="2h")).decided


def test_dialup_no_bounce():
    p = {"domain": "dial.example", "lifetime": "5d"}
    assert run_check("dialup-no-bounce", held_log(), p).status == "pass"
    r = run_check("dialup-no-bounce", held_log(bounce_at=7000), p)
    assert r.status == "fail" and r.counterexamples[0]["msg"] == "x2/m1"
    assert run_check("dialup-no-bounce", held_log(bounce_at=7000),
                     dict(p, lifetime=6000)).status == "pass"
    assert not run_check("dialup-no-bounce", held_log(), {"domain": "other.example"}).decided


def test_dialup_no_bounce_fails_when_held_mail_is_deleted():
    """Found by a planted fault in a real log: held mail deleted by a queue
    cleanup (a Discarded with a named policy) within the lifetime was
    neither stored nor bounced, and passed."""
    p = {"domain": "dial.example", "lifetime": "5d"}
    L = LogBuilder()
    L.link(0, CU, False)
    L.accept(100, X1, "x1/m1", "t1", [A], held=True)
    L.discard(3000, X1, "x1/m1", "t1", A, policy="expired", reason="held too long")
    r = run_check("dialup-no-bounce", L.end(8000), p)
    assert r.status == "fail" and r.counterexamples[0]["msg"] == "x1/m1"
    assert r.counterexamples[0]["why"].startswith("held copy discarded 2900 s after queueing")
    # A copy that was not held (filtered on arrival, say) is not this rule's.
    L = LogBuilder()
    L.accept(100, X1, "x1/m1", "t1", [A])
    L.discard(101, X1, "x1/m1", "t1", A)
    assert run_check("dialup-no-bounce", L.end(8000), p).status == "pass"
