"""feed-virus-deleted, feed-greylisting, feed-spam-levels: met on real runs
of the library scenarios, and failed, naming the fault, when one is planted
in those runs' logs."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mta import events as E
from sim.evidence.checks import run_check
from sim.pipeline import load, run_scenario

LIB = Path(__file__).resolve().parent.parent / "scenarios"
FEED = "feed.provider.example"
CLIENT = "mail.client.example"


@pytest.fixture(scope="module")
def defaults():
    return run_scenario(load(LIB / "feed-defaults.yaml"), write=False).events


@pytest.fixture(scope="module")
def spam_on():
    return run_scenario(load(LIB / "feed-spam-levels.yaml"), write=False).events


def replace(events, old, new):
    return [new if e is old else e for e in events]


def without(events, pred):
    return [e for e in events if not pred(e)]


def why(result):
    return [c["why"] for c in result.counterexamples]


# -- feed-virus-deleted ---------------------------------------------------------------

def test_virus_check_holds_on_the_real_run(defaults):
    r = run_check("feed-virus-deleted", defaults, {"feed": FEED})
    assert r.status == "pass" and r.decided and "infected messages deleted" in r.detail


def infected(events):
    return next(e for e in events if isinstance(e, E.FilterVerdict) and e.outcome == "infected")


def test_planted_infected_message_delivered_fails_naming_it(defaults):
    v = infected(defaults)
    acc = next(e for e in defaults if isinstance(e, E.MessageAccepted) and e.msg == v.msg)
    log = without(defaults, lambda e: isinstance(e, E.Discarded) and e.msg == v.msg)
    log = log + [
        E.Relayed(t=v.t + 1, host=FEED, msg=v.msg, trace=v.trace, rcpt=acc.rcpts[0],
                  dest_host=CLIENT, dest_ip="198.51.100.20"),
        E.MessageAccepted(t=v.t + 1, host=CLIENT, msg="mail.client.example/m999",
                          trace=v.trace, conn="c", client_ip="192.0.2.80", helo=FEED,
                          mail_from=acc.mail_from, rcpts=acc.rcpts[:1], size=acc.size)]
    r = run_check("feed-virus-deleted", log, {"feed": FEED})
    assert r.status == "fail"
    assert any("not discarded naming it" in w for w in why(r))
    assert any(w.startswith("infected (Eicar-Test-Signature) and still sent on") for w in why(r))
    assert {c["msg"] for c in r.counterexamples} == {v.msg}


def test_planted_delivery_after_a_scanner_error_fails(defaults):
    clean = next(e for e in defaults if isinstance(e, E.FilterVerdict) and e.outcome == "clean")
    log = replace(defaults, clean, dataclasses.replace(clean, outcome="error",
                                                       detail="clamd: connection refused"))
    r = run_check("feed-virus-deleted", log, {"feed": FEED})
    assert r.status == "fail" and "with virus verdict error" in why(r)[0]
    assert r.counterexamples[0]["msg"] == clean.msg


def test_virus_check_without_a_virus_found_is_undecidable(defaults):
    log = [dataclasses.replace(e, outcome="clean", detail="")
           if isinstance(e, E.FilterVerdict) and e.outcome == "infected" else e
           for e in defaults]
    r = run_check("feed-virus-deleted", log, {"feed": FEED})
    assert not r.decided and "never exercised" in r.detail
    r = run_check("feed-virus-deleted", without(defaults, lambda e: isinstance(e, E.FilterVerdict)),
                  {"feed": FEED})
    assert not r.decided


# -- feed-greylisting ---------------------------------------------------------------

def rcpt_replies(events, code):
    return [e for e in events if isinstance(e, E.SmtpReply) and e.host == FEED
            and e.command == "RCPT" and e.code == code]


def test_greylisting_check_holds_on_the_real_run(defaults):
    r = run_check("feed-greylisting", defaults, {"feed": FEED})
    assert r.status == "pass" and r.decided and "never retried and never accepted" in r.detail


def test_planted_first_attempt_accepted_fails(defaults):
    spam = next(e for e in rcpt_replies(defaults, 450) if e.client_ip == "198.18.0.66")
    log = replace(defaults, spam, dataclasses.replace(spam, code=250, text="2.1.5 Ok"))
    r = run_check("feed-greylisting", log, {"feed": FEED})
    assert r.status == "fail" and "accepted at its first attempt" in why(r)[0]
    assert "offer" in why(r)[0]


def test_planted_retry_still_greylisted_and_early_pass_fail(defaults):
    greylisted = rcpt_replies(defaults, 450)
    retry = next(e for e in rcpt_replies(defaults, 250)
                 if any(g.argument == e.argument and g.mail_from == e.mail_from
                        and g.client_ip == e.client_ip for g in greylisted))
    first = next(g for g in greylisted if g.argument == retry.argument
                 and g.mail_from == retry.mail_from and g.client_ip == retry.client_ip)
    log = replace(defaults, retry, dataclasses.replace(retry, code=450, text=first.text))
    r = run_check("feed-greylisting", log, {"feed": FEED})
    assert r.status == "fail" and any("still greylisted" in w for w in why(r))
    early = replace(defaults, retry, dataclasses.replace(retry, t=first.t + 100))
    r = run_check("feed-greylisting", early, {"feed": FEED})
    assert r.status == "fail" and any("before the 300 s delay" in w for w in why(r))


def test_planted_acceptance_of_a_never_retried_triplet_fails(defaults):
    spam = next(e for e in rcpt_replies(defaults, 450) if e.client_ip == "198.18.0.66")
    rcpt = spam.argument.split("<")[1].rstrip(">")
    log = defaults + [E.MessageAccepted(
        t=spam.t + 1, host=FEED, msg="feed.provider.example/m999", trace="planted", conn=spam.conn,
        client_ip=spam.client_ip, helo="bot", mail_from=spam.mail_from, rcpts=(rcpt,), size=100)]
    r = run_check("feed-greylisting", log, {"feed": FEED})
    assert r.status == "fail" and "never passed greylisting but its mail was accepted" in why(r)[0]


def test_greylisting_check_undecidable_without_greylisting(defaults):
    log = without(defaults, lambda e: isinstance(e, E.SmtpReply) and e.code == 450)
    assert not run_check("feed-greylisting", log, {"feed": FEED}).decided


# -- feed-spam-levels ---------------------------------------------------------------

FEED2 = "feed2.provider.example"     # low header, med subject, high delete
P2 = {"feed": FEED2, "enabled": True}


def scored(events, level, host=FEED2):
    return next(e for e in events if isinstance(e, E.FilterVerdict) and e.host == host
                and e.outcome == "scored" and e.level == level)


def test_spam_check_holds_on_the_real_runs(defaults, spam_on):
    r = run_check("feed-spam-levels", spam_on, P2)
    assert r.status == "pass" and r.decided
    for level in ("none", "low", "med", "high"):
        assert f"{level} " in r.detail
    r = run_check("feed-spam-levels", defaults, {"feed": FEED})
    assert r.status == "pass" and "off" in r.detail


def test_planted_wrong_action_and_wrong_level_fail(spam_on):
    med = scored(spam_on, "med")
    log = replace(spam_on, med, dataclasses.replace(med, action="none"))
    r = run_check("feed-spam-levels", log, P2)
    assert r.status == "fail" and "level med wants action subject, took none" in why(r)
    assert r.counterexamples[0]["msg"] == med.msg
    low = scored(spam_on, "low")
    log = replace(spam_on, low, dataclasses.replace(low, score=12.0))
    r = run_check("feed-spam-levels", log, P2)
    assert r.status == "fail" and "score 12 is level high, classified low" in why(r)


def test_planted_high_spam_not_deleted_fails(spam_on):
    high = scored(spam_on, "high")
    log = without(spam_on, lambda e: isinstance(e, E.Discarded) and e.msg == high.msg)
    r = run_check("feed-spam-levels", log, P2)
    assert r.status == "fail" and "level high is deleted, but" in why(r)[0]


def test_planted_spam_deletion_with_spam_off_fails(defaults):
    acc = next(e for e in defaults if isinstance(e, E.MessageAccepted) and e.host == FEED)
    log = defaults + [E.Discarded(t=acc.t + 1, host=FEED, msg=acc.msg, trace=acc.trace,
                                  rcpt=acc.rcpts[0], policy="spam", reason="level high")]
    r = run_check("feed-spam-levels", log, {"feed": FEED})
    assert r.status == "fail" and "spam checking is off but the message was deleted" in why(r)[0]
    off = next(e for e in defaults if isinstance(e, E.FilterVerdict) and e.outcome == "off")
    log = replace(defaults, off, dataclasses.replace(off, outcome="scored", level="med",
                                                     action="subject"))
    r = run_check("feed-spam-levels", log, {"feed": FEED})
    assert r.status == "fail" and "spam checking is off but the message was scored" in why(r)[0]


def test_spam_check_undecidable_without_verdicts_and_refuses_bad_actions(defaults):
    log = without(defaults, lambda e: isinstance(e, E.FilterVerdict))
    assert not run_check("feed-spam-levels", log, {"feed": FEED}).decided
    r = run_check("feed-spam-levels", defaults, {"feed": FEED, "actions": {"low": "burn"}})
    assert not r.decided and "burn" in r.detail
