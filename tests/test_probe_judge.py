"""The probes' pure decisions: replies in, findings out (mta/probes/judge.py)."""
from __future__ import annotations

import pytest

from mta.probes import judge as j
from mta.probes.findings import Finding, Reply


def r(code: int, *lines: str) -> Reply:
    return Reply(code, lines or ("",))


def test_reply_parts():
    reply = r(452, "4.5.3 Error: too many recipients")
    assert reply.enhanced == "4.5.3" and reply.klass == 4
    assert r(250, "Ok").enhanced is None
    assert r(550, "5.1.10 x").enhanced == "5.1.10"
    assert r(550, "5.1.1000 x").enhanced is None     # RFC 3463: at most three digits
    with pytest.raises(ValueError):
        Finding("x", "maybe", "")


def test_ehlo_keywords_and_size():
    ehlo = r(250, "mx.example.net", "PIPELINING", "SIZE 10240000", "ETRN", "AUTH PLAIN LOGIN")
    kw = j.ehlo_keywords(ehlo)
    assert kw["AUTH"] == "PLAIN LOGIN" and "PIPELINING" in kw
    assert j.size_limit(kw) == 10240000
    assert j.size_limit({"SIZE": ""}) == 0 and j.size_limit({}) is None


@pytest.mark.parametrize("greeting, expect, status", [
    (r(220, "mx.example.net ESMTP Postfix"), None, "pass"),
    (r(220, "mx.example.net ESMTP Postfix"), "Postfix", "pass"),
    (r(220, "smtp.isp.example ESMTP"), "Postfix", "fail"),      # interception
    (r(220, "ESMTP"), None, "fail"),                            # no name first
    (r(554, "5.7.1 go away"), None, "info"),
    (r(421, "busy"), None, "fail"),
])
def test_banner(greeting, expect, status):
    assert j.judge_banner(greeting, expect).status == status


def test_helo():
    assert j.judge_helo(r(501, "Syntax: HELO hostname"), r(250, "mx")).status == "pass"
    assert j.judge_helo(r(250, "hi"), r(250, "mx")).status == "fail"


def test_reply_codes_table():
    good = [("NOOP", r(250)), ("RCPT before MAIL", r(503, "5.5.1 need MAIL")),
            ("unknown command", r(502, "5.5.2"))]
    assert j.judge_reply_codes(good).status == "pass"
    bad = good + [("MAIL with bad syntax", r(250, "OK"))]
    f = j.judge_reply_codes(bad)
    assert f.status == "fail" and "MAIL with bad syntax: 250" in f.summary


def test_enhanced_codes():
    replies = [("NOOP", r(250, "2.0.0 Ok")), ("RCPT", r(503, "5.5.1 need MAIL")),
               ("DATA", r(354, "End data"))]      # 3xx is not judged
    assert j.judge_enhanced(replies, True).status == "pass"
    assert j.judge_enhanced(replies + [("x", r(550, "4.1.1 wrong class"))], True).status == "fail"
    assert j.judge_enhanced([("NOOP", r(250, "Ok"))], True).status == "fail"
    assert j.judge_enhanced([("NOOP", r(250, "Ok"))], False).status == "info"


def test_size():
    assert j.judge_size(None, None, None).status == "info"
    assert j.judge_size(1000000, r(552, "5.3.4 too big"), r(250, "2.1.0 Ok")).status == "pass"
    assert j.judge_size(1000000, r(250, "Ok"), r(250, "Ok")).status == "fail"
    assert j.judge_size(1000000, r(552, "5.3.4"), r(452, "4.3.1")).status == "fail"


def test_recipient_limit():
    ok = [r(250, "2.1.5 Ok")]
    assert j.judge_recipient_limit(ok * 101, 101).status == "pass"
    f = j.judge_recipient_limit(ok * 100 + [r(452, "4.5.3 too many")], 101)
    assert f.status == "pass" and "limit 100" in f.summary
    assert j.judge_recipient_limit(ok * 50 + [r(452, "4.5.3")], 101).status == "fail"
    assert j.judge_recipient_limit(ok * 100 + [r(552, "5.5.3")], 101).status == "fail"
    assert j.judge_recipient_limit([r(550, "5.1.1 unknown")], 101).status == "skip"
    assert j.judge_recipient_limit([r(450, "4.2.0 greylisted")], 101).status == "skip"


def test_relay():
    refused = [("<>", "<a@nmap.scanme.org>", r(250), r(554, "5.7.1 Relay access denied"))]
    assert j.judge_relay(refused * 16).status == "pass"
    opened = refused * 15 + [("<>", "<x%y@z>", r(250), r(250, "Ok"))]
    f = j.judge_relay(opened)
    assert f.status == "fail" and "1 of 16" in f.summary
    assert j.judge_relay([("<>", "<a@b>", r(550), None)]).status == "pass"


def test_auth_relay():
    assert j.judge_auth_relay(False, None).status == "skip"
    f = j.judge_auth_relay(True, r(530, "5.7.0 Authentication required"))
    assert f.status == "pass" and "asks for authentication" in f.summary
    assert j.judge_auth_relay(True, r(250, "Ok")).status == "fail"


def test_etrn():
    assert j.judge_etrn(True, r(250, "Queuing started")).status == "pass"
    assert j.judge_etrn(True, r(459, "not allowed")).status == "pass"
    assert j.judge_etrn(True, r(502, "no")).status == "fail"
    assert j.judge_etrn(False, r(502, "5.5.2")).status == "info"
    assert j.judge_etrn(False, r(250, "sure")).status == "info"


def test_greylisting():
    grey = r(450, "4.2.0 Greylisted")
    assert j.judge_greylist(r(250), None, None).status == "info"
    assert j.judge_greylist(grey, None, None).status == "info"
    assert j.judge_greylist(grey, r(250, "Ok"), 301).status == "pass"
    assert j.judge_greylist(grey, grey, 301).status == "fail"
    assert j.judge_greylist(r(550, "unknown"), None, None).status == "skip"


def test_pipelining():
    lines = ["MAIL FROM:<a@b>", "RCPT TO:<c@d>", "RSET", "NOOP"]
    good = [r(250), r(554), r(250), r(250)]
    assert j.judge_pipelining(True, lines, good).status == "pass"
    assert j.judge_pipelining(True, lines, good[:3]).status == "fail"
    assert j.judge_pipelining(True, lines, [r(554), r(250), r(250), r(250)]).status == "fail"
    assert j.judge_pipelining(False, [], []).status == "skip"


def test_idle():
    assert j.judge_idle(None, None, 10).status == "pass"
    assert j.judge_idle(60.0, r(421, "4.4.2 timeout"), 400).status == "fail"
    assert j.judge_idle(300.5, r(421, "4.4.2 timeout"), 400).status == "pass"
