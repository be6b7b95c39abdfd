"""Planted faults on real logs: retry-discipline and mx-order (issue 10, item 6).

Each test runs a real scenario, checks the untouched log passes, plants the
one fault the check exists for, and asserts the check fails naming it.
"""
from __future__ import annotations

import dataclasses
from functools import lru_cache
from pathlib import Path

import pytest

from mta import events as E
from sim.events import GuaranteeExpected
from sim.evidence.checks import run_check
from sim.evidence.lifecycle import lifecycles
from sim.pipeline import load, load_string, run_scenario

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


@lru_cache(maxsize=None)
def _run(name: str) -> tuple[E.Event, ...]:
    return tuple(run_scenario(load(SCENARIOS / f"{name}.yaml"), write=False).events)


def _params(events, gid: str) -> dict:
    """The expectation's parameters as the pipeline wrote them into the log."""
    return next(e.params for e in events if isinstance(e, GuaranteeExpected) and e.guarantee == gid)


def judge(events, gid: str, **extra):
    return run_check(gid, list(events), dict(_params(events, gid), **extra))


def replace(events, old: E.Event, **changes) -> list[E.Event]:
    """The log with ``old`` changed, kept in time order."""
    out = [dataclasses.replace(e, **changes) if e is old else e for e in events]
    return sorted(out, key=lambda e: e.t)


def whys(result) -> list[str]:
    return [c["why"] for c in result.counterexamples]


def causes(result) -> set[str]:
    return {c.get("cause", "") for c in result.counterexamples}


def rounds_of(life) -> list[list[E.AttemptStarted]]:
    out, cur = [], []
    for e in sorted(life.events, key=lambda e: e.t):
        if isinstance(e, E.AttemptStarted):
            cur.append(e)
        elif isinstance(e, (E.Deferred, E.Relayed, E.Bounced)) and cur:
            out.append(cur)
            cur = []
    return out + ([cur] if cur else [])


def deferred_copy(events, host: str, min_rounds: int):
    return next(lf for lf in lifecycles(list(events))
                if lf.host == host and len(rounds_of(lf)) >= min_rounds)


# -- retry-discipline ------------------------------------------------------------------

SENDER = "mail.example.org"        # mx-fallback's Postfix sender
SECONDARY = "mx2.example.net"      # ...and its secondary MX, queueing while mx1 is down


def test_real_logs_keep_the_documented_discipline():
    for name in ("mx-fallback", "dialup-primary-loses-mail", "queueing-server-etrn"):
        events = _run(name)
        if any(isinstance(e, GuaranteeExpected) and e.guarantee == "retry-discipline"
               for e in events):
            r = judge(events, "retry-discipline")
            assert r.status == "pass" and r.judged > 0, (name, r.detail)


def test_planted_attempt_inside_the_minimum_backoff():
    events = _run("mx-fallback")
    lf = deferred_copy(events, SECONDARY, 2)
    first_end = lf.deferrals[0].t
    second = rounds_of(lf)[1][0]
    planted = replace(events, second, t=first_end + 100)
    r = judge(planted, "retry-discipline")
    assert r.status == "fail"
    assert any("below the postfix minimum of 300 s" in w for w in whys(r)), whys(r)
    assert "retried-too-soon" in causes(r)
    assert lf.rcpt in {c["rcpt"] for c in r.counterexamples}


def test_planted_pause_past_the_maximum():
    events = _run("mx-fallback")
    lf = deferred_copy(events, SECONDARY, 4)
    rs = rounds_of(lf)
    # Erase one round (its attempts and the deferral that ended it): the
    # pause around it is longer than Postfix's 4000 + 300 s.
    k = next(i for i in range(1, len(rs) - 1) if rs[i + 1][0].t - rs[i - 1][0].t > 4360)
    gone = {id(a) for a in rs[k]} | {id(next(d for d in lf.deferrals if d.t >= rs[k][0].t))}
    planted = [e for e in events if id(e) not in gone]
    r = judge(planted, "retry-discipline")
    assert r.status == "fail"
    assert any("above the postfix maximum of 4300 s" in w for w in whys(r)), whys(r)
    assert "pause-too-long" in causes(r)


def test_planted_give_up_before_the_lifetime():
    events = _run("dialup-primary-loses-mail")
    lf = next(lf for lf in lifecycles(list(events))
              if lf.host == "mta.postfix.example" and isinstance(lf.fate_event, E.Bounced))
    planted = replace(events, lf.fate_event, t=lf.queued_t + 86400)
    r = judge(planted, "retry-discipline")
    assert r.status == "fail"
    assert any("before the postfix lifetime of 432000 s" in w for w in whys(r)), whys(r)
    assert "gave-up-early" in causes(r)


def test_planted_held_copy_retried_too_soon_after_release():
    events = _run("queueing-server-etrn")
    releases = [e for e in events if isinstance(e, E.Released)]
    lf = next(lf for lf in lifecycles(list(events))
              if lf.held and lf.attempts and isinstance(lf.fate_event, E.Relayed))
    first = lf.attempts[0]
    assert any(r.host == lf.host and r.t <= first.t for r in releases)
    # The release round defers, and the copy is tried again 120 s later.
    deferral = E.Deferred(t=first.t + 1, host=lf.host, msg=lf.msg, trace=lf.trace,
                          rcpt=lf.rcpt, code=421, text="4.4.2 Lost connection",
                          next_attempt=first.t + 120)
    again = dataclasses.replace(first, t=first.t + 120)
    fate = lf.fate_event
    later = dataclasses.replace(fate, t=first.t + 121)
    planted = sorted([e for e in events if e is not fate] + [deferral, again, later],
                     key=lambda e: e.t)
    r = judge(planted, "retry-discipline")
    assert r.status == "fail"
    hit = [w for w in whys(r) if "after a release, below the postfix minimum" in w]
    assert hit and hit[0].startswith("retried after 120 s"), whys(r)
    assert "retried-too-soon" in causes(r)


# -- mx-order -------------------------------------------------------------------------------

def fallback_round(events):
    """A round of mx-fallback's sender that tried the primary, then the secondary."""
    for lf in lifecycles(list(events)):
        if lf.host != SENDER:
            continue
        for rnd in rounds_of(lf):
            if [a.preference for a in rnd] == [10, 20]:
                return rnd
    raise AssertionError("no fallback round in the log")


def test_real_logs_keep_mx_order():
    for name in ("mx-fallback", "dialup-primary-loses-mail", "etrn-some-exchangers"):
        r = judge(_run(name), "mx-order")
        assert r.status == "pass" and r.judged > 0, (name, r.detail)


def test_planted_secondary_tried_before_the_primary():
    events = _run("mx-fallback")
    first, second = fallback_round(events)
    planted = replace(events, first, dest_host=second.dest_host, dest_ip=second.dest_ip,
                      preference=20)
    planted = replace(planted, next(e for e in planted if e == second),
                      dest_host=first.dest_host, dest_ip=first.dest_ip, preference=10)
    r = judge(planted, "mx-order")
    assert r.status == "fail"
    assert any("started at mx2.example.net (preference 20), not at the most preferred" in w
               for w in whys(r)), whys(r)
    assert any("a more preferred MX after a less preferred one" in w for w in whys(r))
    assert "out-of-order" in causes(r)


def test_planted_answer_whose_order_the_attempts_ignore():
    events = _run("mx-fallback")
    first, _ = fallback_round(events)
    answer = [e for e in events if isinstance(e, E.MxAnswer) and e.host == SENDER
              and e.t <= first.t][-1]
    # DNS now says mx2 is the primary; the sender still went to mx1 first.
    planted = replace(events, answer, preferences=tuple(reversed(answer.preferences)))
    r = judge(planted, "mx-order")
    assert r.status == "fail"
    assert any("tried mx1.example.net at preference 10, but the answer lists it at 20" in w
               for w in whys(r)), whys(r)
    assert "not-in-answer" in causes(r)


TIES = """
name: equal-preferences
seed: 3
duration: 12h
hosts:
  - {name: mx1.example.net, address: 192.0.2.10}
  - {name: mx2.example.net, address: 192.0.2.20}
  - {name: mail.example.org, address: 198.51.100.25}
dns:
  zones: |
    $ORIGIN example.net.
    @     MX 10 mx1.example.net.
    @     MX 10 mx2.example.net.
    mx1   A  192.0.2.10
    mx2   A  192.0.2.20
    $ORIGIN example.org.
    @     MX 10 mail.example.org.
    mail  A  198.51.100.25
roles:
  - {role: primary-mx, host: mx1.example.net, local_domains: example.net}
  - {role: primary-mx, host: mx2.example.net, local_domains: example.net}
traffic:
  - {kind: sender, host: mail.example.org, rate: 6/h, stop: 10h, from: carol@example.org,
     to: alice@example.net}
expectations:
  - guarantee: mx-order
waive:
  conservation: a test of MX order only
  retry-discipline: nothing is deferred
  bounce-dsn: nothing bounces
"""


def test_planted_equal_preferences_never_shuffled():
    events = tuple(run_scenario(load_string(TIES), write=False).events)
    r = judge(events, "mx-order")
    assert r.status == "pass" and "starting in a tie" in r.detail, r.detail
    firsts = [e for e in events if isinstance(e, E.AttemptStarted) and e.host == SENDER]
    assert len(firsts) >= 20 and {a.dest_host for a in firsts} == {"mx1.example.net",
                                                                   "mx2.example.net"}
    # Every round now starts at mx1: a sender that never shuffles.
    ip = next(a.dest_ip for a in firsts if a.dest_host == "mx1.example.net")
    planted = list(events)
    for a in firsts:
        if a.dest_host == "mx2.example.net":
            planted = replace(planted, next(e for e in planted if e == a),
                              dest_host="mx1.example.net", dest_ip=ip)
    r = judge(planted, "mx-order")
    assert r.status == "fail"
    assert any(w.startswith("mx2.example.net came first in 0 of") and "fair shuffle" in w
               for w in whys(r)), whys(r)
    assert "not-shuffled" in causes(r)


@pytest.mark.parametrize("gid", ["retry-discipline", "mx-order"])
def test_the_checks_say_how_much_they_judged(gid):
    r = judge(_run("mx-fallback"), gid)
    assert r.judged > 0 and r.unit
