"""The restricted-relay checks on real runs' logs: each passes on its
library scenario, fails when a fault is planted in that log, and is
undecidable on a log that never exercised its situation."""
from __future__ import annotations

import dataclasses
from functools import lru_cache
from pathlib import Path

import pytest

from mta import events as E
from sim.evidence.checks import run_check
from sim.evidence.handlog import LogBuilder
from sim.pipeline import run_scenario
from sim.scenario.loader import load_scenario

LIBRARY = Path(__file__).resolve().parents[1] / "scenarios"


@lru_cache(maxsize=None)
def log(name: str) -> tuple[E.Event, ...]:
    return tuple(run_scenario(load_scenario(LIBRARY / f"{name}.yaml"), write=False).events)


def judge(gid: str, events, **params):
    return run_check(gid, list(events), params)


def replace_where(events, pred, **changes):
    """The log with every event matching ``pred`` changed; asserts one matched."""
    out, hit = [], 0
    for e in events:
        if pred(e):
            hit += 1
            e = dataclasses.replace(e, **changes)
        out.append(e)
    assert hit, "the planted fault matched no event"
    return out


POP = dict(relay="relay.perfectweb.example", window=5400.0)


def test_pop_before_smtp_passes_and_catches_planted_faults() -> None:
    events = log("pop-before-smtp-window")
    assert judge("pop-before-smtp", events, **POP).status == "pass"
    # Alice's login an hour earlier: her later relayed sessions had no grant.
    early = replace_where(events, lambda e: isinstance(e, E.Pop3Login) and e.user == "alice",
                          t=0.0)
    r = judge("pop-before-smtp", early, **POP)
    assert r.status == "fail" and r.decided and "no POP3 login" in r.counterexamples[0]["why"]
    # A refusing greeting to Bob while his grant holds.
    first_bob = next(e for e in events if isinstance(e, E.SmtpReply) and e.command == "CONNECT"
                     and e.client_ip == "203.0.113.22")
    refused = replace_where(events, lambda e: e is first_bob, code=554, text="5.7.1 no")
    assert judge("pop-before-smtp", refused, **POP).status == "fail"
    # A window twice as long: Alice's 554s came while her grant "held".
    assert judge("pop-before-smtp", events, **{**POP, "window": 10800.0}).status == "fail"


def test_pop_before_smtp_undecidable_without_a_session_outside_a_grant() -> None:
    r = judge("pop-before-smtp", log("alt-port-2525"), **POP)
    assert r.status == "fail" and not r.decided and r.detail.startswith("undecidable")


AFF = dict(relay="relay.perfectweb.example",
           owners={"alice": ["customer.example"], "dan": ["dan-co.example"]})


def test_sender_affiliated_passes_and_catches_planted_faults() -> None:
    events = log("sender-affiliated")
    assert judge("sender-affiliated", events, **AFF).status == "pass"
    leak = replace_where(events, lambda e: isinstance(e, E.SmtpReply) and e.command == "MAIL"
                         and e.code == 553 and "ceo@" in e.argument, code=250, text="2.1.0 Ok")
    r = judge("sender-affiliated", leak, **AFF)
    assert r.status == "fail" and len(r.counterexamples) == 4
    # Judged by the user AUTH named: if dan owned customer.example, his 553s are wrong.
    wider = {**AFF, "owners": {**AFF["owners"], "dan": ["dan-co.example", "customer.example"]}}
    assert judge("sender-affiliated", events, **wider).status == "fail"


def test_sender_affiliated_undecidable_when_everyone_sends_as_themselves() -> None:
    r = judge("sender-affiliated", log("pop-before-smtp-window"),
              relay="relay.perfectweb.example",
              owners={"alice": ["customer.example"], "bob": ["customer.example"]})
    assert not r.decided and "no user sent from a domain it does not own" in r.detail


ALT = dict(relay="relay.perfectweb.example", clients=["alice.aol-like.example"])


def test_alt_port_passes_and_catches_planted_faults() -> None:
    events = log("alt-port-2525")
    assert judge("alt-port-2525", events, **ALT).status == "pass"
    # The client claims success but the relay's log has no message on 2525.
    no_accept = [e for e in events if not (isinstance(e, E.MessageAccepted)
                                           and e.host == "relay.perfectweb.example")]
    r = judge("alt-port-2525", no_accept, **ALT)
    assert r.status == "fail" and "accepted nothing" in r.counterexamples[0]["why"]
    # The client that never falls back fails the guarantee.
    assert judge("alt-port-2525", events, relay=ALT["relay"],
                 clients=["carol.aol-like.example"]).status == "fail"


def test_alt_port_undecidable_without_a_port_25_timeout() -> None:
    r = judge("alt-port-2525", log("port25-interception"), relay="relay.gconnect.example")
    assert not r.decided


BLK = dict(relay="relay.gconnect.example")


def test_blocked_attachments_passes_and_catches_planted_faults() -> None:
    events = log("blocked-attachments")
    assert judge("blocked-attachments", events, **BLK).status == "pass"
    let_through = replace_where(events, lambda e: isinstance(e, E.ClientSubmission)
                                and e.attachments == ("invoice.pdf.exe",),
                                outcome="sent", code=250, detail="1 recipients")
    r = judge("blocked-attachments", let_through, **BLK)
    assert r.status == "fail" and "invoice.pdf.exe" in r.counterexamples[0]["why"]
    # A relay refusal naming a file that is not on the list.
    wrong = replace_where(events, lambda e: isinstance(e, E.SmtpReply)
                          and e.command == "DATA_END" and "Holiday" in e.text,
                          text='5.7.1 Attachment "report.pdf" refused: .pdf files are not permitted')
    assert judge("blocked-attachments", wrong, **BLK).status == "fail"
    # If .pdf were on the list, report.pdf going through is a violation.
    assert judge("blocked-attachments", events, **BLK, extensions=["exe", "scr", "pdf"]) \
        .status == "fail"


def _refused_but_kept(accepted_anyway: bool) -> list[E.Event]:
    """A hand-built log: x.exe refused at end of DATA; the relay may still
    have accepted the message (a filter run after the queue write)."""
    relay, ip, conn, rcpt = BLK["relay"], "198.51.100.51", "relay/c1", "a@example.net"
    text = '5.7.1 Attachment "x.exe" refused: .exe files are not permitted'
    L = LogBuilder()
    L.add(E.ConnectionOpened(t=10, host=relay, conn=conn, client_ip=ip, port=25))
    L.reply(10, relay, conn, ip, "CONNECT", "", 220, f"{relay} ESMTP")
    L.reply(10, relay, conn, ip, "MAIL", "FROM:<ann@example.org>", 250, "2.1.0 Ok")
    L.reply(10, relay, conn, ip, "RCPT", f"TO:<{rcpt}>", 250, "2.1.5 Ok")
    if accepted_anyway:
        L.add(E.MessageAccepted(t=10, host=relay, msg="relay/m1", trace="t1", conn=conn,
                                client_ip=ip, helo="ann.example.org",
                                mail_from="ann@example.org", rcpts=(rcpt,), size=1000))
    L.reply(10, relay, conn, ip, "DATA_END", "", 550, text, stage="attachments")
    L.add(E.ClientSubmission(t=11, host="ann.example.org", actor="c0", service="smtp",
                             dest_host=relay, dest_ip="192.0.2.60", port=25,
                             outcome="rejected", code=550, detail=f"DATA: {text}",
                             attachments=("x.exe",)))
    return L.end(20)


def test_blocked_attachments_fails_when_the_refused_message_is_kept() -> None:
    """Found by a planted fault in a real log: a 550 at end of DATA is no
    refusal if the message was accepted on that transaction anyway."""
    assert judge("blocked-attachments", _refused_but_kept(False), **BLK).status == "pass"
    r = judge("blocked-attachments", _refused_but_kept(True), **BLK)
    assert r.status == "fail" and r.counterexamples[0]["msg"] == "relay/m1"
    assert "accepted all the same" in r.counterexamples[0]["why"]


def test_blocked_attachments_undecidable_without_one() -> None:
    assert not judge("blocked-attachments", log("auth-required"), **BLK).decided


ICP = dict(client="dan.isp.example", client_ip="203.0.113.41", relay="relay.gconnect.example")


def test_port25_interception_passes_and_catches_planted_faults() -> None:
    events = log("port25-interception")
    assert judge("port25-interception", events, **ICP).status == "pass"
    unnoticed = [e for e in events if not (isinstance(e, E.ClientSubmission)
                                           and e.outcome == "intercepted")]
    r = judge("port25-interception", unnoticed, **ICP)
    assert r.status == "fail" and "did not notice" in r.counterexamples[0]["why"]
    # A false alarm: the first port-25 connection was, per the log, the relay's own.
    first = next(e for e in events if isinstance(e, E.ConnectionOpened)
                 and e.host == "smtp.isp.example")
    false_alarm = replace_where(events, lambda e: e is first, host="relay.gconnect.example")
    r = judge("port25-interception", false_alarm, **ICP)
    assert r.status == "fail" and r.decided
    assert "connection the relay logged" in r.counterexamples[0]["why"]


def test_port25_interception_undecidable_when_nothing_was_intercepted() -> None:
    r = judge("port25-interception", log("auth-required"), client="dan.example.org",
              client_ip="198.51.100.61", relay="relay.gconnect.example")
    assert not r.decided and "was intercepted" in r.detail


def test_auth_required_wants_530_5_7_0() -> None:
    events = log("auth-required")
    assert judge("auth-required", events, relay="relay.gconnect.example").status == "pass"
    old = replace_where(events, lambda e: isinstance(e, E.SmtpReply) and e.code == 530,
                        code=554, text="5.7.1 <client@example.net>: Relay access denied")
    r = judge("auth-required", old, relay="relay.gconnect.example")
    assert r.status == "fail" and "not 530 5.7.0" in r.counterexamples[0]["why"]
    wrong_code = replace_where(events, lambda e: isinstance(e, E.SmtpReply) and e.code == 530,
                               text="5.7.1 Authentication required")
    assert judge("auth-required", wrong_code, relay="relay.gconnect.example").status == "fail"
