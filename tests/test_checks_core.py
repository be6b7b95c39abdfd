"""The cross-cutting checks, each on a passing and a failing hand-built log."""
from __future__ import annotations

import pytest

from mta import events as E
from sim.evidence.checks import REGISTRY, run_check
from sim.evidence.handlog import LogBuilder

A, B = "a@example.org", "b@example.org"
MX1, MX2, S = "mx1.example", "mx2.example", "sender.example"
CUSTOM = {"preset": "custom", "settings": {"min_backoff": 300, "max_backoff": 4000, "lifetime": "5d"}}
RETRY = {"default": CUSTOM}


def status(gid, events, **params):
    return run_check(gid, events, params)


def test_registry_has_the_brief_s_checks():
    for gid in ["conservation", "retry-discipline", "bounce-dsn", "mx-order", "reply-codes",
                "full-logging", "mx-fallback", "sender-gives-up", "dialup-primary-loses-mail",
                "queueing-server-etrn", "no-open-relay", "no-relay-via-isp-outbound",
                "dialup-no-bounce", "connectivity-probe", "smtp-on-demand-finger", "etrn-flush",
                "feed-queue-2d", "feed-latency-20s", "feed-lockdown", "max-recipients-30",
                "max-size-30mb", "dnsbl-check", "filters-on-every-mx", "smart-host",
                "relay-default-deny", "auth-required"]:
        assert gid in REGISTRY


def test_unknown_check_and_bad_params_fail_undecided():
    r = run_check("no-such-guarantee", [])
    assert (r.status, r.decided) == ("fail", False)
    L = LogBuilder()
    L.submit(1, S, "s/m1", "t1", [A])
    r = run_check("retry-discipline", L.end(10), {"min_backoff": "soon", "max_backoff": 1,
                                                  "lifetime": 1})
    assert r.status == "fail" and "bad parameters" in r.detail


# -- conservation ---------------------------------------------------------------

def good_relay_log():
    L = LogBuilder()
    L.accept(10, MX2, "mx2/m1", "t1", [A, B])
    L.attempt(11, MX2, "mx2/m1", "t1", [A, B], MX1, pref=10)
    L.accept(12, MX1, "mx1/m1", "t1", [A, B], client_ip="192.0.2.20")
    L.relay(12, MX2, "mx2/m1", "t1", A, MX1)
    L.relay(12, MX2, "mx2/m1", "t1", B, MX1)
    L.deliver(13, MX1, "mx1/m1", "t1", A)
    L.discard(13, MX1, "mx1/m1", "t1", B, policy="virus")
    return L


def test_conservation_passes_when_every_copy_has_a_fate():
    r = status("conservation", good_relay_log().end(100))
    assert r.status == "pass", r.detail
    assert "4 recipient copies" in r.detail


def test_conservation_planted_silent_loss_names_the_recipient():
    # mx1 tells mx2 "250" for a and b, but only queues a: b is silently lost.
    L = LogBuilder()
    L.accept(10, MX2, "mx2/m1", "t1", [A, B])
    L.relay(12, MX2, "mx2/m1", "t1", A, MX1)
    L.relay(12, MX2, "mx2/m1", "t1", B, MX1)
    L.accept(12, MX1, "mx1/m1", "t1", [A, B], client_ip="192.0.2.20", queue=[A])
    r = status("conservation", L.end(100))
    assert r.status == "fail" and r.decided
    assert len(r.counterexamples) == 1
    c = r.counterexamples[0]
    assert (c["msg"], c["trace"], c["rcpt"], c["hosts"]) == ("mx1/m1", "t1", B, [MX1])
    assert c["why"].startswith("lost")
    assert {"message_accepted"} <= {e["kind"] for e in c["events"]}


@pytest.mark.parametrize("damage, fate", [
    ("bounce-without-dsn", "bounced-no-dsn"),
    ("unnamed-discard", "discarded-unnamed"),
    ("relay-never-accepted", "relayed-unconfirmed"),
])
def test_conservation_other_losses(damage, fate):
    L = LogBuilder()
    L.accept(10, MX2, "mx2/m1", "t1", [A])
    if damage == "bounce-without-dsn":
        L.bounce(20, MX2, "mx2/m1", "t1", A, dsn=False)
    elif damage == "unnamed-discard":
        L.discard(20, MX2, "mx2/m1", "t1", A, policy="")
    else:
        L.accept(5, MX1, "mx1/other", "t-other", [B])
        L.relay(20, MX2, "mx2/m1", "t1", A, MX1)   # mx1 is in the log, never took t1
    r = status("conservation", L.end(100))
    assert r.status == "fail"
    assert [c["rcpt"] for c in r.counterexamples] == [A]
    assert r.counterexamples[0]["why"].startswith(fate)


def test_conservation_null_sender_bounce_is_not_loss_and_queued_is_fine():
    L = LogBuilder()
    L.accept(10, MX2, "mx2/m1", "t1", [A], mail_from="")
    L.bounce(20, MX2, "mx2/m1", "t1", A, sender="", dsn=False)
    L.accept(30, MX2, "mx2/m2", "t2", [B])
    assert status("conservation", L.end(100)).status == "pass"


def test_conservation_duplicates_counted_and_optionally_failed():
    L = good_relay_log()
    L.deliver(14, MX1, "mx1/m1", "t1", A)
    ev = L.end(100)
    r = status("conservation", ev)
    assert r.status == "pass" and "duplicates 1" in r.detail
    r = status("conservation", ev, duplicates_fail=True)
    assert r.status == "fail" and r.counterexamples[0]["rcpt"] == A


def test_conservation_undecidable_without_acceptances():
    r = status("conservation", LogBuilder().end(10))
    assert (r.status, r.decided) == ("fail", False)
    assert "MessageAccepted" in r.detail


# -- retry-discipline ------------------------------------------------------------------

def retry_log(second_try: float, *, give_up: float | None = None, end: float = 10000,
              then: float = 600):
    L = LogBuilder()
    L.submit(0, S, "s/m1", "t1", [A])
    L.attempt(0, S, "s/m1", "t1", [A], MX1, pref=10, outcome="refused")
    L.defer(1, S, "s/m1", "t1", A, second_try)
    L.attempt(second_try, S, "s/m1", "t1", [A], MX1, pref=10, outcome="refused")
    L.defer(second_try + 1, S, "s/m1", "t1", A, second_try + then)
    if give_up is not None:
        L.bounce(give_up, S, "s/m1", "t1", A, code=451, text="4.4.7 expired",
                 reason="expired")
    else:
        L.attempt(second_try + then, S, "s/m1", "t1", [A], MX1, pref=10)
        L.relay(second_try + then + 1, S, "s/m1", "t1", A, "external.example")
    return L.end(end)


def test_retry_discipline_passes():
    r = status("retry-discipline", retry_log(300), **RETRY)
    assert r.status == "pass", r.detail
    assert (r.judged, r.unit.split()[0]) == (1, "copies")


def test_retry_sooner_than_min_backoff_fails():
    r = status("retry-discipline", retry_log(120), **RETRY)
    assert r.status == "fail"
    c = r.counterexamples[0]
    assert "below the custom minimum of 300" in c["why"]
    assert (c["msg"], c["rcpt"], c["times"]) == ("s/m1", A, [0.0, 120.0])


def test_retry_right_after_a_release_is_allowed():
    ev = retry_log(120)
    ev.insert(-3, E.Released(t=119.5, host=S, domain="example.org", trigger="etrn", count=1))
    ev.sort(key=lambda e: e.t)
    assert status("retry-discipline", ev, **RETRY).status == "pass"


def test_retry_gap_above_max_backoff_fails():
    r = status("retry-discipline", retry_log(5000), **RETRY)
    assert r.status == "fail" and "above the custom maximum" in r.counterexamples[0]["why"]


def test_still_queued_without_attempts_until_the_end_fails():
    L = LogBuilder()
    L.submit(0, S, "s/m1", "t1", [A])
    r = status("retry-discipline", L.end(5000), **RETRY)
    assert r.status == "fail" and r.counterexamples[0]["times"] == [0.0, 5000.0]


def _custom(lifetime):
    return {"default": {"preset": "custom", "settings": {"min_backoff": 300,
                                                         "max_backoff": 4000,
                                                         "lifetime": lifetime}}}


def test_give_up_before_lifetime_fails_and_after_passes():
    r = status("retry-discipline", retry_log(300, give_up=3000), **_custom(3600))
    assert r.status == "fail" and "before the custom lifetime" in r.counterexamples[0]["why"]
    r = status("retry-discipline", retry_log(300, give_up=3700, end=3800), **_custom(3600))
    assert r.status == "pass", r.detail


def test_give_up_long_after_the_lifetime_fails():
    # Lifetime 600 s, max pause 4000 s: a give-up at 9000 s is one pause too late.
    r = status("retry-discipline", retry_log(300, give_up=9000, end=9100), **_custom(600))
    assert r.status == "fail" and "after the custom lifetime" in r.counterexamples[0]["why"]


def test_per_host_model_wins_over_the_default_and_a_missing_model_is_undecided():
    ev = retry_log(120)
    fast = {"preset": "custom", "settings": {"min_backoff": 60, "max_backoff": 4000}}
    assert status("retry-discipline", ev, **RETRY, per_host={S: fast}).status == "pass"
    r = status("retry-discipline", ev)
    assert not r.decided and "no retry model for host sender.example" in r.detail


def test_postfix_is_judged_by_its_documented_defaults():
    pf = {"per_host": {S: {"preset": "postfix"}}}
    assert status("retry-discipline", retry_log(300), **pf).status == "pass"
    r = status("retry-discipline", retry_log(200), **pf)
    assert "below the postfix minimum of 300" in r.counterexamples[0]["why"]
    # maximal_backoff_time 4000 + queue_run_delay 300, plus 60 s of round slack.
    assert status("retry-discipline", retry_log(4350), **pf).status == "pass"
    assert status("retry-discipline", retry_log(4400), **pf).status == "fail"


def test_against_rfc5321_postfix_s_five_minutes_are_a_finding():
    pf = {"per_host": {S: {"preset": "postfix"}}, "against": "rfc5321"}
    r = status("retry-discipline", retry_log(300), **pf)
    assert r.status == "fail" and "below the rfc5321 minimum of 1800" in \
        r.counterexamples[0]["why"]
    assert status("retry-discipline", retry_log(1800, then=1800), **pf).status == "pass"


def held_log(release_at: float, second_round: float | None):
    L = LogBuilder()
    L.accept(0, S, "s/m1", "t1", [A], held=True)
    L.add(E.Released(t=release_at, host=S, domain="example.org", trigger="etrn", count=1))
    L.attempt(release_at, S, "s/m1", "t1", [A], MX1, pref=10, outcome="refused")
    L.defer(release_at + 1, S, "s/m1", "t1", A, release_at + 600)
    if second_round is not None:
        L.attempt(second_round, S, "s/m1", "t1", [A], MX1, pref=10)
        L.relay(second_round + 1, S, "s/m1", "t1", A, "external.example")
    return L.end(20000)


def test_held_copies_are_judged_from_their_release_on():
    r = status("retry-discipline", held_log(1000, None), **RETRY)
    assert r.status == "pass" and r.judged == 1
    assert status("retry-discipline", held_log(1000, 1400), **RETRY).status == "pass"
    r = status("retry-discipline", held_log(1000, 1120), **RETRY)
    assert r.status == "fail"
    assert "after a release, below the custom minimum" in r.counterexamples[0]["why"]


def test_a_held_copy_tried_before_any_release_fails():
    L = LogBuilder()
    L.accept(0, S, "s/m1", "t1", [A], held=True)
    L.attempt(50, S, "s/m1", "t1", [A], MX1, pref=10)
    L.relay(51, S, "s/m1", "t1", A, "external.example")
    r = status("retry-discipline", L.end(100), **RETRY)
    assert r.status == "fail" and "before any release" in r.counterexamples[0]["why"]


def test_exim_gives_up_counting_from_the_destination_s_first_failure():
    # Another copy for the same domain failed first at 0; this one, queued
    # a day later, may go when the host has been failing for 4 days.
    L = LogBuilder()
    L.submit(0, S, "s/m0", "t0", [B])
    L.attempt(0, S, "s/m0", "t0", [B], MX1, pref=10, outcome="refused")
    L.defer(0, S, "s/m0", "t0", B, 900)
    L.submit(86400, S, "s/m1", "t1", [A])
    t = 86400.0
    while t < 4 * 86400:
        L.attempt(t, S, "s/m1", "t1", [A], MX1, pref=10, outcome="refused")
        L.defer(t + 1, S, "s/m1", "t1", A, t + 6 * 3600)
        t += 6 * 3600
    L.bounce(4 * 86400 + 10, S, "s/m1", "t1", A, code=451, text="4.4.7 retry timeout exceeded",
             reason="expired")
    exim = {"per_host": {S: {"preset": "exim"}}, "hosts": [S]}
    r = status("retry-discipline", L.end(4 * 86400 + 20), **exim)
    assert not [c for c in r.counterexamples if c["msg"] == "s/m1" and "before" in c["why"]]


# -- bounce-dsn ----------------------------------------------------------------------------

def bounce_log(**kw):
    L = LogBuilder()
    L.accept(10, MX1, "mx1/m1", "t1", [A], mail_from=kw.pop("mail_from", "alice@sender.example"))
    L.bounce(20, MX1, "mx1/m1", "t1", A, **kw)
    return L.end(100)


def test_bounce_dsn_passes():
    r = status("bounce-dsn", bounce_log())
    assert r.status == "pass", r.detail


def test_dsn_to_null_sender_fails():
    r = status("bounce-dsn", bounce_log(dsn_to="<>"))
    assert r.status == "fail"
    whys = " | ".join(c["why"] for c in r.counterexamples)
    assert "DSN addressed to <>" in whys


def test_dsn_for_a_null_sender_message_fails():
    r = status("bounce-dsn", bounce_log(mail_from="", sender=""))
    assert r.status == "fail"
    assert "sender is <>" in r.counterexamples[0]["why"]
    r = status("bounce-dsn", bounce_log(mail_from="", sender="", dsn=False))
    assert r.status == "pass"


@pytest.mark.parametrize("kw, why", [
    ({"dsn": False}, "0 DSNs"),
    ({"content_type": "text/plain"}, "not multipart/report"),
    ({"dsn_from": "postmaster@mx1.example"}, "not <>"),
    ({"dsn_to": "mallory@else.example"}, "not the original sender"),
])
def test_bad_dsns_fail(kw, why):
    r = status("bounce-dsn", bounce_log(**kw))
    assert r.status == "fail" and why in r.counterexamples[0]["why"]


def test_two_dsns_for_one_bounce_fail():
    ev = bounce_log()
    dsn = next(e for e in ev if isinstance(e, E.DsnCreated))
    ev.insert(-1, E.DsnCreated(t=21, host=MX1, msg="mx1/m1.dsn2", trace="dsn2.t1",
                               about_trace="t1", to=dsn.to, rcpts=(A,), action="failed",
                               content_type=dsn.content_type, mail_from=""))
    r = status("bounce-dsn", ev)
    assert r.status == "fail" and "2 DSNs" in r.counterexamples[0]["why"]


# -- mx-order -------------------------------------------------------------------------------

def told(L, t, host, domain="example.org", records=((10, MX1), (20, MX2)), outcome="answer",
         unresolved=()):
    """The MX answer ``host`` got for ``domain`` at ``t``."""
    L.add(E.MxAnswer(t=t, host=host, domain=domain, name=domain, outcome=outcome,
                     preferences=tuple(p for p, _ in records),
                     exchanges=tuple(x for _, x in records), unresolved=tuple(unresolved)))


def mx_log(prefs_round1, deferred=True, records=((10, MX1), (20, MX2)), unresolved=()):
    L = LogBuilder()
    L.submit(0, S, "s/m1", "t1", [A])
    told(L, 0, S, records=records, unresolved=unresolved)
    for i, (dest, p) in enumerate(prefs_round1):
        L.attempt(i, S, "s/m1", "t1", [A], dest, pref=p, outcome="refused")
    if deferred:
        L.defer(5, S, "s/m1", "t1", A, 600)
    else:
        L.relay(5, S, "s/m1", "t1", A, prefs_round1[-1][0])
    return L.end(1000)


def test_mx_order_passes_in_order_with_fallback():
    r = status("mx-order", mx_log([(MX1, 10), (MX2, 20)]))
    assert r.status == "pass" and r.judged == 1, r.detail


def test_mx_order_out_of_order_fails():
    r = status("mx-order", mx_log([(MX2, 20), (MX1, 10)]))
    assert r.status == "fail"
    whys = [c["why"] for c in r.counterexamples]
    assert any("not at the most preferred usable MX (preference 10" in w for w in whys)
    assert any("a more preferred MX after a less preferred one" in w for w in whys)


def test_a_sender_that_never_tries_the_primary_fails():
    # The old check inferred the MX set from the attempts: this passed.
    r = status("mx-order", mx_log([(MX2, 20)], deferred=False))
    assert r.status == "fail" and "not at the most preferred" in r.counterexamples[0]["why"]


def test_an_mx_the_answer_did_not_list_fails():
    r = status("mx-order", mx_log([(MX1, 10), ("rogue.example", 20)]))
    assert any("answer lists no such MX" in c["why"] for c in r.counterexamples)


def test_a_round_without_an_answer_before_it_fails():
    L = LogBuilder()
    L.submit(0, S, "s/m1", "t1", [A])
    L.attempt(0, S, "s/m1", "t1", [A], MX1, pref=10)
    L.relay(1, S, "s/m1", "t1", A, MX1)
    told(L, 2, S)
    r = status("mx-order", L.end(10))
    assert r.status == "fail" and "no MX answer before it" in r.counterexamples[0]["why"]


def test_mx_order_no_fallback_fails():
    r = status("mx-order", mx_log([(MX1, 10)]))
    assert r.status == "fail" and "without falling back to mx2.example" in \
        r.counterexamples[0]["why"]


def test_no_fallback_needed_to_an_mx_without_address_or_after_a_server_reply():
    assert status("mx-order", mx_log([(MX1, 10)], unresolved=(MX2,))).status == "pass"
    L = LogBuilder()
    L.submit(0, S, "s/m1", "t1", [A])
    told(L, 0, S)
    L.attempt(0, S, "s/m1", "t1", [A], MX1, pref=10)
    L.defer(1, S, "s/m1", "t1", A, 600, code=450, text="4.2.0 Greylisted")   # RCPT: defer
    assert status("mx-order", L.end(10)).status == "pass"


def test_relaying_mx_only_tries_below_its_own_preference():
    L = LogBuilder()
    L.accept(0, MX2, "mx2/m1", "t1", [A])
    told(L, 0, MX2)
    L.attempt(1, MX2, "mx2/m1", "t1", [A], MX1, pref=10, outcome="refused")
    L.defer(2, MX2, "mx2/m1", "t1", A, 600)
    assert status("mx-order", L.end(100)).status == "pass"
    L.accept(200, MX2, "mx2/m2", "t2", [B])
    L.attempt(201, MX2, "mx2/m2", "t2", [B], MX1, pref=10, outcome="refused")
    L.attempt(202, MX2, "mx2/m2", "t2", [B], MX2, pref=20)
    L.defer(203, MX2, "mx2/m2", "t2", B, 900)
    r = status("mx-order", L.end(300))
    assert r.status == "fail" and "not below its own" in r.counterexamples[0]["why"]


def null_mx_log(code=556, text="5.1.10 Recipient address has null MX", attempt=False, at=0,
                answer=True):
    L = LogBuilder()
    L.submit(0, S, "s/m1", "t1", ["x@null.example"])
    if answer:
        told(L, 0, S, domain="null.example", records=((0, "."),), outcome="null-mx")
    if attempt:
        L.attempt(0, S, "s/m1", "t1", ["x@null.example"], "mx.null.example", pref=0)
    L.bounce(at, S, "s/m1", "t1", "x@null.example", code=code, text=text, reason="null-mx")
    return L.end(100)


def test_null_mx_fails_at_once_with_556():
    r = status("mx-order", null_mx_log())
    assert r.status == "pass" and r.judged == 1
    assert status("mx-order", null_mx_log(answer=False),
                  null_mx_domains=["null.example"]).status == "pass"
    for bad in (null_mx_log(code=550, text="5.1.1 nope"), null_mx_log(attempt=True),
                null_mx_log(at=3600)):
        r = status("mx-order", bad)
        assert r.status == "fail" and any("556 5.1.10" in c["why"] for c in r.counterexamples)


def test_mx_order_undecidable_without_preferences():
    r = status("mx-order", LogBuilder().end(1))
    assert not r.decided


def shuffle_log(firsts):
    """Rounds to a domain with two MX hosts at preference 10 (mx1, mx2)."""
    L = LogBuilder()
    other = {MX1: MX2, MX2: MX1}
    for i, first in enumerate(firsts):
        t = 10.0 * i
        L.submit(t, S, f"s/m{i}", f"t{i}", [A])
        told(L, t, S, records=((10, MX1), (10, MX2)))
        L.attempt(t, S, f"s/m{i}", f"t{i}", [A], first, pref=10, outcome="refused")
        L.attempt(t + 1, S, f"s/m{i}", f"t{i}", [A], other[first], pref=10)
        L.relay(t + 2, S, f"s/m{i}", f"t{i}", A, other[first])
    return L.end(10000)


def test_mx_order_equal_preferences_must_be_shuffled():
    r = status("mx-order", shuffle_log([MX1] * 20))
    assert r.status == "fail"
    assert "mx2.example came first in 0 of 20 rounds" in r.counterexamples[0]["why"]
    assert "fail" == status("mx-order", shuffle_log([MX1] * 19 + [MX2])).status  # P = 2e-5
    assert status("mx-order", shuffle_log([MX1] * 14 + [MX2] * 6)).status == "pass"
    assert status("mx-order", shuffle_log([MX1] * 19)).status == "pass"   # too few to judge


# -- reply-codes ---------------------------------------------------------------------------

def replies(*rows):
    L = LogBuilder()
    for i, (cmd, code, text, stage) in enumerate(rows):
        L.reply(i, MX1, "mx1/c1", "192.0.2.1", cmd, "", code, text, stage=stage)
    return L.end(100)


def test_reply_codes_pass():
    ev = replies(("CONNECT", 220, "mx1 ESMTP", ""), ("EHLO", 250, "mx1", ""),
                 ("RCPT", 450, "4.2.0 Greylisted", "greylist"),
                 ("RCPT", 554, "5.7.1 Relay access denied", "relay"))
    assert status("reply-codes", ev).status == "pass"


@pytest.mark.parametrize("row, why", [
    (("RCPT", 550, "4.7.1 try later", ""), "of another class"),
    (("RCPT", 550, "Relay access denied", ""), "without an enhanced code"),
    (("RCPT", 550, "5.7.1 Greylisted", "greylist"), "expected 4xx"),
])
def test_reply_codes_fail(row, why):
    ev = replies(("MAIL", 250, "2.1.0 Ok", ""), row)
    r = status("reply-codes", ev)
    assert r.status == "fail" and why in r.counterexamples[0]["why"]


def test_deferral_on_permanent_reply_fails():
    L = LogBuilder()
    L.reply(0, MX1, "c", "192.0.2.1", "CONNECT", "", 220, "hi")
    L.submit(0, S, "s/m1", "t1", [A])
    L.defer(1, S, "s/m1", "t1", A, 400, code=550, text="5.1.1 unknown")
    r = status("reply-codes", L.end(10))
    assert r.status == "fail" and "permanent 550" in r.counterexamples[0]["why"]


def test_reply_codes_undecidable_without_replies():
    assert not status("reply-codes", LogBuilder().end(1)).decided


# -- full-logging ----------------------------------------------------------------------------

def test_full_logging_passes_on_complete_sessions():
    assert status("full-logging", good_relay_log().end(100)).status == "pass"


def test_full_logging_fails_on_gaps():
    L = good_relay_log()
    L.add(E.ConnectionOpened(t=50, host=MX1, conn="mx1/c99", client_ip="192.0.2.66",
                             port=25))   # nothing logged after
    L.reply(51, MX1, "mx1/c77", "192.0.2.67", "CONNECT", "", 220, "hi")  # never opened
    L.add(E.ConnectionOpened(t=60, host=MX1, conn="mx1/c98", client_ip="192.0.2.68", port=25))
    L.reply(60, MX1, "mx1/c98", "192.0.2.68", "EHLO", "me.example", 250, "hi",
            helo="me.example")
    L.reply(61, MX1, "mx1/c98", "192.0.2.68", "MAIL", "FROM:<x@y>", 250, "ok")  # helo lost
    r = status("full-logging", L.end(100))
    assert r.status == "fail"
    whys = " | ".join(c["why"] for c in r.counterexamples)
    assert "no logged reply" in whys and "never logged as opened" in whys
    assert "HELO name ''" in whys


def test_full_logging_accept_without_data_end_reply_fails():
    ev = good_relay_log().end(100)
    ev = [e for e in ev if not (isinstance(e, E.SmtpReply) and e.command == "DATA_END"
                                and e.host == MX1)]
    r = status("full-logging", ev)
    assert r.status == "fail"
    assert "without a logged 2xx reply to end of DATA" in r.counterexamples[0]["why"]


def test_delay_warning_is_not_a_second_dsn_but_must_be_well_formed():
    ev = bounce_log()
    warn = E.DsnCreated(t=15, host=MX1, msg="mx1/w1", trace="warn.t1", about_trace="t1",
                        to="alice@sender.example", rcpts=(A,), action="delayed",
                        content_type="multipart/report; report-type=delivery-status", mail_from="")
    ev.insert(-3, warn)
    assert status("bounce-dsn", ev).status == "pass"
    bad = E.DsnCreated(t=15, host=MX1, msg="mx1/w1", trace="warn.t1", about_trace="t1",
                       to="alice@sender.example", rcpts=(A,), action="delayed",
                       content_type="text/plain", mail_from="")
    ev[ev.index(warn)] = bad
    r = status("bounce-dsn", ev)
    assert r.status == "fail" and "delayed DSN" in r.counterexamples[0]["why"]


def test_retry_gap_is_only_judged_while_the_lifetime_lasts():
    L = LogBuilder()
    L.submit(0, S, "s/m1", "t1", [A])
    L.attempt(0, S, "s/m1", "t1", [A], MX1, pref=10, outcome="refused")
    L.defer(1, S, "s/m1", "t1", A, 3000)
    L.attempt(3000, S, "s/m1", "t1", [A], MX1, pref=10, outcome="refused")
    L.defer(3001, S, "s/m1", "t1", A, 6500)
    # lifetime 3600 s: the expiry bounce comes at the next run, 3500 s later
    L.bounce(6500, S, "s/m1", "t1", A, code=451, text="4.4.7 expired", reason="expired")
    r = status("retry-discipline", L.end(7000), **{"default": {
        "preset": "custom", "settings": {"min_backoff": 300, "max_backoff": 3000,
                                         "lifetime": 3600}}})
    assert r.status == "pass", r.detail


def test_full_logging_allows_a_second_ehlo_with_another_name():
    L = LogBuilder()
    L.add(E.ConnectionOpened(t=0, host=MX1, conn="c1", client_ip="192.0.2.1", port=25))
    L.reply(0, MX1, "c1", "192.0.2.1", "CONNECT", "", 220, "hi")
    L.reply(1, MX1, "c1", "192.0.2.1", "EHLO", "one.example", 250, "hi", helo="one.example")
    L.reply(2, MX1, "c1", "192.0.2.1", "EHLO", "two.example", 250, "hi", helo="two.example")
    L.reply(3, MX1, "c1", "192.0.2.1", "MAIL", "FROM:<x@y>", 250, "ok", helo="two.example",
            mail_from="x@y")
    assert status("full-logging", L.end(10)).status == "pass"
