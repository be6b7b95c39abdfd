"""Planted faults in real logs (issue 10 item 6) for the authenticated and
POP-before-SMTP relays' checks: each check passes on its library
scenario's log, and fails, naming the fault, once the fault it exists for
is planted in that log (a blocked client accepted, a 31 MiB message
accepted, a maillog line removed, a 250 carrying a 5.x.x code...)."""
from __future__ import annotations

import dataclasses
from functools import lru_cache
from pathlib import Path

from mta import events as E
from mta.maillog import maillog_lines
from sim.actors.generate import SIM_EPOCH
from sim.evidence.checks import run_check
from sim.pipeline import run_scenario
from sim.scenario.loader import load_scenario

LIBRARY = Path(__file__).resolve().parents[1] / "scenarios"
RELAY = "relay.gconnect.example"
IAN, OSCAR = "198.51.100.76", "198.51.100.77"         # XBL-listed, ORDB-listed
DNSBL = dict(host=RELAY, listed=[IAN, OSCAR], fail="open")


@lru_cache(maxsize=None)
def log(name: str) -> tuple[E.Event, ...]:
    return tuple(run_scenario(load_scenario(LIBRARY / f"{name}.yaml"), write=False).events)


def judge(gid: str, events, **params):
    return run_check(gid, list(events), params)


def replace_first(events, pred, **changes):
    """The log with the first event matching ``pred`` changed."""
    out, done = [], False
    for e in events:
        if not done and pred(e):
            e, done = dataclasses.replace(e, **changes), True
        out.append(e)
    assert done, "the planted fault matched no event"
    return out


def whys(r) -> str:
    return " | ".join(c["why"] for c in r.counterexamples)


def test_auth_required_catches_an_unauthenticated_mail_accepted() -> None:
    events = log("auth-relay-limits")
    assert judge("auth-required", events, relay=RELAY).status == "pass"
    bot = lambda e: isinstance(e, E.SmtpReply) and e.command == "MAIL" and e.code == 530
    took = replace_first(events, bot, code=250, text="2.1.0 Ok")
    r = judge("auth-required", took, relay=RELAY)
    assert r.status == "fail" and "unauthenticated MAIL answered 250" in whys(r)
    postfix = replace_first(events, bot, code=554, text="5.7.1 <x@spam.example>: Access denied")
    r = judge("auth-required", postfix, relay=RELAY)
    assert r.status == "fail" and "not 530 5.7.0" in whys(r)


def test_dnsbl_check_catches_a_blocked_client_accepted() -> None:
    events = log("auth-relay-limits")
    r = judge("dnsbl-check", events, **DNSBL)
    assert r.status == "pass" and r.judged > 10, r.detail
    ian = lambda e: isinstance(e, E.SmtpReply) and e.command == "RCPT" and e.client_ip == IAN
    planted = replace_first(events, ian, code=250, text="2.1.5 Ok", stage="relay")
    r = judge("dnsbl-check", planted, **DNSBL)
    assert r.status == "fail" and f"listed client {IAN} was not refused" in whys(r)
    # And the other way: an unlisted customer refused by the lists.
    carol = lambda e: isinstance(e, E.SmtpReply) and e.command == "RCPT" \
        and e.client_ip == "198.51.100.71"
    wrong = replace_first(events, carol, code=554, stage="dnsbl",
                          text="5.7.1 Service unavailable; blocked using xbl.spamhaus.example")
    r = judge("dnsbl-check", wrong, **DNSBL)
    assert r.status == "fail" and "unlisted client 198.51.100.71 refused" in whys(r)


def test_dnsbl_check_judges_the_unanswered_list_by_the_fail_policy() -> None:
    events = log("auth-relay-limits")
    # ORDB did not answer from 2h to 3h: failing open let clients on, which
    # a fail-closed expectation does not accept.
    r = judge("dnsbl-check", events, **{**DNSBL, "fail": "closed"})
    assert r.status == "fail" and "(fail closed), but the client was not deferred" in whys(r)


def test_max_size_catches_a_31_mib_message_accepted() -> None:
    events = log("auth-relay-limits")
    assert judge("max-size-30mb", events, relay=RELAY).status == "pass"
    big = 31 * 1024 * 1024
    accepted = next(e for e in events if isinstance(e, E.MessageAccepted) and e.host == RELAY)
    planted = replace_first(events, lambda e: e is accepted, size=big)
    r = judge("max-size-30mb", planted, relay=RELAY)
    assert r.status == "fail" and f"accepted a message of {big} bytes" in whys(r)
    declared = lambda e: isinstance(e, E.SmtpReply) and e.command == "MAIL" and e.code == 552
    planted = replace_first(events, declared, code=250, text="2.1.0 Ok")
    r = judge("max-size-30mb", planted, relay=RELAY)
    assert r.status == "fail" and "answered 250, not 552" in whys(r)


def test_max_size_is_decided_both_ways_in_the_library_run() -> None:
    events = log("auth-relay-limits")
    mail = [e for e in events if isinstance(e, E.SmtpReply) and e.host == RELAY
            and e.code == 552]
    assert {e.command for e in mail} == {"MAIL", "DATA_END"}      # SIZE= and in DATA


def test_reply_codes_catches_a_250_with_a_permanent_enhanced_code() -> None:
    events = log("auth-relay-limits")
    params = dict(hosts=[RELAY])
    assert judge("reply-codes", events, **params).status == "pass"
    ok = lambda e: isinstance(e, E.SmtpReply) and e.host == RELAY and e.command == "MAIL" \
        and e.code == 250
    planted = replace_first(events, ok, text="5.7.1 Ok")
    r = judge("reply-codes", planted, **params)
    assert r.status == "fail" and "250 carries enhanced code 5.7.1 of another class" in whys(r)


def test_full_logging_catches_a_maillog_line_removed(tmp_path) -> None:
    events = log("auth-relay-limits")
    lines = list(maillog_lines(events, SIM_EPOCH))
    whole = tmp_path / "maillog"
    whole.write_text("\n".join(lines) + "\n")
    params = dict(hosts=[RELAY], maillog=str(whole))
    r = judge("full-logging", events, **params)
    assert r.status == "pass", whys(r)
    for needle, named in (
            ("status=sent", "relayed of <"),
            (": connect from unknown[198.51.100.71]", "connect from [198.51.100.71]"),
            ("NOQUEUE: reject: RCPT from unknown[198.51.100.76]", "the refusal 554 to RCPT"),
            ("client=unknown[198.51.100.75]", "the client of")):
        i = next(i for i, line in enumerate(lines) if line.split()[3] == "relay"
                 and needle in line)
        cut = tmp_path / f"cut{i}"
        cut.write_text("\n".join(lines[:i] + lines[i + 1:]) + "\n")
        r = judge("full-logging", events, **{**params, "maillog": str(cut)})
        assert r.status == "fail" and named in whys(r), (needle, whys(r))


def test_full_logging_refuses_lines_that_are_not_postfix_format(tmp_path) -> None:
    events = log("auth-relay-limits")
    f = tmp_path / "maillog"
    f.write_text("\n".join([*maillog_lines(events, SIM_EPOCH), "2001-03-16 relay: hello"]))
    r = judge("full-logging", events, hosts=[RELAY], maillog=str(f))
    assert r.status == "fail" and "not in Postfix's syslog format" in whys(r)


def test_relay_default_deny_catches_a_stranger_relayed() -> None:
    events = log("pop-relay-default-deny")
    relay2 = "relay2.perfectweb.example"
    assert judge("relay-default-deny", events, relay=relay2).status == "pass"
    stranger = lambda e: isinstance(e, E.SmtpReply) and e.host == relay2 \
        and e.command == "RCPT" and e.client_ip == "203.0.113.32"
    planted = replace_first(events, stranger, code=250, text="2.1.5 Ok")
    r = judge("relay-default-deny", planted, relay=relay2)
    assert r.status == "fail" and "which opened no grant, answered 250" in whys(r)
    # The connect-refusing relay: a greeting of 220 to the stranger, then a relayed RCPT.
    relay1 = "relay.perfectweb.example"
    assert judge("relay-default-deny", events, relay=relay1).status == "pass"
    greet = lambda e: isinstance(e, E.SmtpReply) and e.host == relay1 \
        and e.command == "CONNECT" and e.client_ip == "203.0.113.32"
    first = next(e for e in events if greet(e))
    opened = replace_first(events, greet, code=220, text="relay.perfectweb.example ESMTP")
    opened.append(dataclasses.replace(first, t=first.t + 1, command="RCPT", code=250,
                                      argument="TO:<friend@example.net>", text="2.1.5 Ok"))
    r = judge("relay-default-deny", sorted(opened, key=lambda e: e.t), relay=relay1)
    assert r.status == "fail" and "opened no grant" in whys(r)
