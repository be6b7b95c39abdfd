"""The receiving server's rules as pure functions, without a server:
command order, line screening, EHLO keywords, error accounting
(mta.smtp.rules) and the transaction rules: arguments, what the chain's
outcome means, the Received header (mta.smtp.transaction)."""
from __future__ import annotations

import pytest

from mta.addresses import parse_mailbox
from mta.policy import Decision, Outcome
from mta.smtp import replies as R
from mta.smtp.rules import (COMMAND_ORDER, FORBIDDEN_COMMANDS, Command, ErrorCount, Need,
                            SessionState, ehlo_keywords, lockdown_refusal, multiline,
                            order_refusal, overshoot_forgiven, screen_line, split_reply)
from mta.smtp.transaction import (MailArgs, data_refusal, mail_reply, parse_mail, parse_rcpt,
                                  rcpt_verdict, received_header, trace_block, with_protocol)

FRESH = SessionState(auth_enabled=True)
GREETED = SessionState(greeted=True, auth_enabled=True)
IN_MAIL = SessionState(greeted=True, in_transaction=True, auth_enabled=True)
WITH_RCPT = SessionState(greeted=True, in_transaction=True, has_recipients=True,
                         auth_enabled=True)


@pytest.mark.parametrize("verb,state,reply", [
    ("MAIL", FRESH, R.R_SEND_HELO),
    ("MAIL", GREETED, None),
    ("MAIL", IN_MAIL, R.R_NESTED_MAIL),
    ("RCPT", FRESH, R.R_SEND_HELO),
    ("RCPT", GREETED, R.R_NEED_MAIL),
    ("RCPT", IN_MAIL, None),
    ("DATA", FRESH, R.R_SEND_HELO),
    ("DATA", GREETED, R.R_NEED_MAIL),
    ("DATA", IN_MAIL, R.R_NEED_RCPT),
    ("DATA", WITH_RCPT, None),
    ("AUTH", IN_MAIL, R.R_AUTH_IN_TRANSACTION),          # RFC 4954 §4
    ("AUTH", GREETED, None),                             # aiosmtpd checks the rest
    ("AUTH", SessionState(greeted=True), R.R_AUTH_DISABLED),
    ("AUTH", SessionState(in_transaction=True), R.R_AUTH_DISABLED),   # checked first
    ("NOOP", FRESH, None),
    ("ETRN", IN_MAIL, None),              # its own answer says 503 (RFC 1985)
])
def test_command_order(verb: str, state: SessionState, reply: str | None) -> None:
    assert order_refusal(verb, state) == reply


def test_every_order_refusal_is_503_5_5_1() -> None:
    """RFC 5321 §4.1.4 "bad sequence of commands", RFC 3463 5.5.1."""
    replies = {reply for rules in COMMAND_ORDER.values() for _, reply in rules}
    assert replies and all(r.startswith("503 5.5.1 ") for r in replies)
    assert {need for rules in COMMAND_ORDER.values() for need, _ in rules} == set(Need)


def test_lockdown_lets_only_quit_through() -> None:
    assert lockdown_refusal("QUIT", "192.0.2.9") is None
    for verb in ("EHLO", "HELO", "MAIL", "NOOP", "XYZZY", "RSET"):
        assert lockdown_refusal(verb, "192.0.2.9") == "503 5.7.1 Error: access denied for [192.0.2.9]"


@pytest.mark.parametrize("line,extended,expected", [
    (b"", False, R.R_BAD_SYNTAX),
    (b"   ", False, R.R_BAD_SYNTAX),
    (b"NOOP\x00x", False, R.R_NUL),
    (b"NOOP \xff", False, R.R_NOT_ASCII),
    (b"noop", False, Command("NOOP", None)),
    (b"mail FROM:<a@b.example>  ", False, Command("MAIL", "FROM:<a@b.example>")),
    (b"NOOP " + b"x" * 506, False, R.R_LINE_TOO_LONG),        # 511 + CRLF > 512
    (b"NOOP " + b"x" * 505, False, Command("NOOP", "x" * 505)),
    (b"MAIL " + b"x" * 520, False, R.R_LINE_TOO_LONG),
    (b"MAIL " + b"x" * 520, True, Command("MAIL", "x" * 520)),    # SIZE= room after EHLO
    (b"RCPT " + b"x" * 520, True, R.R_LINE_TOO_LONG),
])
def test_screen_line(line: bytes, extended: bool, expected) -> None:
    assert screen_line(line, base_limit=512, extended=extended, size_offered=True)[2] == expected


def screened(line: bytes, **kw):
    return screen_line(line, **{"base_limit": 512, "extended": True, "size_offered": True, **kw})


def test_size_room_only_when_size_is_offered() -> None:
    mail = b"MAIL " + b"x" * 531                     # 536 + CRLF: only with SIZE room
    assert isinstance(screened(mail)[2], Command)
    assert screened(b"MAIL " + b"x" * 532)[2] == R.R_LINE_TOO_LONG
    assert screened(mail, size_offered=False)[2] == R.R_LINE_TOO_LONG
    assert screened(mail, extended=False)[2] == R.R_LINE_TOO_LONG


def test_logged_form_hides_credentials_and_is_capped() -> None:
    assert screened(b"auth PLAIN AGN1c3QAc2VjcmV0")[:2] == ("AUTH", "PLAIN")
    verb, arg, _ = screened(b"NOOP " + b"y" * 300)
    assert verb == "NOOP" and len(arg) == 200
    assert screened(b"X" * 40)[0] == "X" * 16
    assert screened(b"\tNOOP\x00")[:2] == ("\tNOOP\x00", "")     # refused lines are logged too
    assert screened(b"\t")[2] == R.R_BAD_SYNTAX


def test_forbidden_commands_are_headers_and_http() -> None:
    assert {"SUBJECT:", "GET", "POST", "CONNECT"} <= FORBIDDEN_COMMANDS
    assert not FORBIDDEN_COMMANDS & {"MAIL", "RCPT", "DATA", "HELO", "EHLO", "QUIT"}


def test_ehlo_keywords_follow_the_settings() -> None:
    plain = ehlo_keywords("mx.example.net", policy_keywords=("SIZE 10240000",), etrn=False,
                          auth_mechanisms=None)
    assert plain == ["mx.example.net", "PIPELINING", "SIZE 10240000", "ENHANCEDSTATUSCODES",
                     "8BITMIME", "HELP"]
    full = ehlo_keywords("q.isp.example", policy_keywords=(), etrn=True,
                         auth_mechanisms=["LOGIN", "PLAIN"])
    assert full == ["q.isp.example", "PIPELINING", "ETRN", "ENHANCEDSTATUSCODES", "8BITMIME",
                    "AUTH LOGIN PLAIN", "HELP"]
    # AUTH on but not offered now (TLS required and absent): no AUTH line.
    assert not any(k.startswith("AUTH") for k in ehlo_keywords(
        "h.example", policy_keywords=(), etrn=False, auth_mechanisms=[]))


def test_multiline_reply_and_its_log_form() -> None:
    text = multiline(250, ["mx.example.net", "PIPELINING", "HELP"])
    assert text == "250-mx.example.net\r\n250-PIPELINING\r\n250 HELP"
    assert split_reply(text) == (250, "mx.example.net\nPIPELINING\nHELP")
    assert multiline(250, ["only"]) == "250 only"


def test_error_count_reaches_the_hard_limit() -> None:
    count = ErrorCount(limit=3)
    for code, forgiven in ((250, False), (354, False), (452, True), (501, False),
                           (421, False)):
        count = count.after(code, forgiven)
    assert (count.errors, count.exhausted) == (2, False)
    assert count.after(550).exhausted
    assert ErrorCount(limit=20).after(500).errors == 1


def test_recipient_overshoot_is_forgiven_up_to_postfix_limit() -> None:
    assert overshoot_forgiven(1) and overshoot_forgiven(1000) and not overshoot_forgiven(1001)


def test_parse_mail() -> None:
    got = parse_mail("FROM:<a@b.example> SIZE=1000 BODY=8BITMIME", extended=True)
    assert isinstance(got, MailArgs)
    assert (got.sender.mailbox, got.declared_size, got.options) == (
        "a@b.example", 1000, ("SIZE=1000", "BODY=8BITMIME"))
    assert parse_mail("FROM:<>", extended=False).sender.is_null
    assert parse_mail("FROM:<a@b.example> SIZE=1", extended=False) == R.R_MAIL_SYNTAX
    assert parse_mail("TO:<a@b.example>", extended=True) == R.R_MAIL_SYNTAX
    assert parse_mail(None, extended=True) == R.R_MAIL_SYNTAX
    assert parse_mail("FROM:<a@b.example> BODY=BINARYMIME", extended=True) == R.R_BODY_SYNTAX
    assert parse_mail("FROM:<a@b.example> FROB=1 AUTH=<>", extended=True) == \
        "555 5.5.4 Unsupported option: AUTH"
    assert parse_mail("FROM:<a@b.example", extended=True).startswith("501 5.1.7 ")


def test_parse_rcpt() -> None:
    assert parse_rcpt("TO:<u@example.net>").mailbox == "u@example.net"
    assert parse_rcpt("TO:<>") == R.R_NULL_RCPT
    assert parse_rcpt("TO:") == R.R_RCPT_SYNTAX
    assert parse_rcpt("TO:<u@example.net> NOTIFY=NEVER") == "555 5.5.4 Unsupported option: NOTIFY"


def outcome(decision: Decision, keep: bool = True) -> Outcome:
    return Outcome(decision, keep=keep)


def test_what_the_chain_outcome_means() -> None:
    ok = outcome(Decision.accept("relay"))
    relay = outcome(Decision.reject("relay", 554, "5.7.1", "<x@far.example>: Relay access denied"))
    too_many = outcome(Decision.defer("recipient_limit", 452, "4.5.3", "Error: too many recipients"))
    assert mail_reply(ok) == R.R_MAIL_OK and mail_reply(relay).startswith("554 5.7.1 ")

    v = rcpt_verdict(ok, overshoot=0)
    assert (v.reply, v.accepted, v.keep, v.forgiven) == (R.R_RCPT_OK, True, True, False)
    assert rcpt_verdict(outcome(Decision.accept("limit"), keep=False), 0).keep is False
    v = rcpt_verdict(relay, overshoot=5)
    assert (v.accepted, v.overshoot, v.forgiven) == (False, 5, False)
    v = rcpt_verdict(too_many, overshoot=999)
    assert (v.reply, v.overshoot, v.forgiven) == ("452 4.5.3 Error: too many recipients", 1000, True)
    assert rcpt_verdict(too_many, overshoot=1000).forgiven is False

    size = outcome(Decision.reject("size", 552, "5.3.4", "Message size exceeds fixed limit"))
    assert data_refusal(size, overflow=True, has_message=False) == R.R_TOO_BIG
    assert data_refusal(ok, overflow=True, has_message=False) == R.R_TOO_BIG
    assert data_refusal(relay, overflow=False, has_message=True) == relay.decision.reply
    assert data_refusal(ok, overflow=False, has_message=True) is None


def test_received_header_rfc5321_section_4_4() -> None:
    assert [with_protocol(False, False), with_protocol(True, False), with_protocol(True, True)] \
        == ["SMTP", "ESMTP", "ESMTPA"]
    line = received_header(helo="client.example.org", client_ip="192.0.2.7", by="mx.example.net",
                           protocol="ESMTP", conn="mx.example.net/c1", when=86400.0)
    assert line == ("Received: from client.example.org ([192.0.2.7])\r\n"
                    "\tby mx.example.net with ESMTP (mx.example.net/c1);\r\n"
                    "\tFri, 02 Jan 1970 00:00:00 GMT")
    block = trace_block(line, [("X-Stamp", "u@example.net")])
    assert block == (line + "\r\nX-Stamp: u@example.net\r\n").encode()
    assert trace_block(None, [("X-A", "1")]) == b"X-A: 1\r\n" and trace_block(None, []) == b""


def test_parse_mail_sender_is_an_address() -> None:
    assert parse_mail("FROM:<a@b.example>", extended=True).sender == parse_mailbox("a@b.example")
