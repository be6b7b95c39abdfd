"""Relay-control and limit checks on hand-built SMTP sessions."""
from __future__ import annotations

import pytest

from mta import events as E
from sim.evidence.checks import run_check
from sim.evidence.handlog import LogBuilder

R, ISP, CUST, SH = "relay.example", "out.isp.example", "cust.example", "smarthost.example"
NMAP_FORMS = ['relaytest@nmap.scanme.org', 'relaytest%nmap.scanme.org@[192.0.2.10]',
              '"relaytest@nmap.scanme.org"@[192.0.2.10]', 'nmap.scanme.org!relaytest',
              '@[192.0.2.10]:relaytest@nmap.scanme.org']


def session(L, host, ip, steps, t=0.0, conn=None, accept=None):
    """Replies for one connection; ``steps`` = [(command, argument, code, text)]."""
    conn = conn or f"{host}/c{len(L.events)}"
    L.add(E.ConnectionOpened(t=t, host=host, conn=conn, client_ip=ip, port=25))
    helo, mail, rcpts = "", None, []
    for cmd, arg, code, text in steps:
        if cmd in ("EHLO", "HELO") and code < 300:
            helo = arg
        if cmd == "MAIL" and code < 300:
            mail = arg[5:].strip("<>")
        if cmd == "RCPT" and code < 300:
            rcpts.append(arg[3:].strip("<>"))
        L.reply(t, host, conn, ip, cmd, arg, code, text, helo=helo, mail_from=mail,
                rcpts=tuple(rcpts))
    if accept:
        L.add(E.MessageAccepted(t=t, host=host, msg=accept, trace="tr-" + accept, conn=conn,
                                client_ip=ip, helo=helo, mail_from=mail or "", rcpts=tuple(rcpts),
                                size=100))
    return conn


def probe(code, addrs=NMAP_FORMS, auth=None):
    L = LogBuilder()
    steps = [("CONNECT", "", 220, "hi"), ("EHLO", "probe.example", 250, "hi SIZE 31457280")]
    if auth:
        steps.append(("AUTH", "PLAIN xxx", auth, "2.7.0 ok" if auth < 300 else "5.7.8 no"))
    steps.append(("MAIL", "FROM:<antispam@nmap.scanme.org>", 250, "2.1.0 ok"))
    for a in addrs:
        steps.append(("RCPT", f"TO:<{a}>", code, "5.7.1 Relay access denied" if code >= 500
                      else "2.1.5 ok"))
    steps.append(("RCPT", "TO:<bob@relay-served.example>", 250, "2.1.5 ok"))
    session(L, R, "203.0.113.9", steps)
    return L.end(10)


OPEN = {"hosts": [R], "domains": ["relay-served.example"], "networks": ["10.0.0.0/8"]}


def test_no_open_relay_passes_when_probes_are_refused():
    r = run_check("no-open-relay", probe(554), OPEN)
    assert r.status == "pass", r.detail
    assert "5 relay attempts" in r.detail


@pytest.mark.parametrize("addr", NMAP_FORMS + ["bob%evil.example@relay-served.example"])
def test_no_open_relay_fails_on_each_accepted_form(addr):
    r = run_check("no-open-relay", probe(250, [addr]), OPEN)
    assert r.status == "fail" and r.counterexamples[0]["rcpt"] == addr


def test_no_open_relay_trusts_networks_and_auth_and_roles_form():
    assert run_check("no-open-relay", probe(250, auth=235), OPEN).decided is False
    r = run_check("no-open-relay", probe(250),
                  {"roles": {R: {"domains": [], "networks": ["203.0.113.0/24"]}}})
    assert not r.decided   # trusted client: nothing counts as a relay attempt


def test_relay_default_deny():
    p = {"relay": R, "domains": ["relay-served.example"]}
    assert run_check("relay-default-deny", probe(554), p).status == "pass"
    r = run_check("relay-default-deny", probe(250, auth=235), p)
    assert r.status == "fail"
    r = run_check("relay-default-deny", probe(450), p)
    assert r.status == "fail" and "expected a 5xx" in r.counterexamples[0]["why"]


def auth_log(rcpt_code=530, auth_in_tx=503):
    L = LogBuilder()
    session(L, R, "198.51.100.7", [
        ("CONNECT", "", 220, "hi"), ("EHLO", "c.example", 250, "hi"),
        ("MAIL", "FROM:<a@c.example>", 250, "2.1.0 ok"),
        ("RCPT", "TO:<x@far.example>", rcpt_code, "5.7.0 Authentication required"),
        ("AUTH", "PLAIN abc", auth_in_tx, "5.5.1 Error: MAIL transaction in progress"),
        ("RSET", "", 250, "2.0.0 ok"),
        ("AUTH", "PLAIN abc", 235, "2.7.0 Authentication successful"),
        ("MAIL", "FROM:<a@c.example>", 250, "2.1.0 ok"),
        ("RCPT", "TO:<x@far.example>", 250, "2.1.5 ok")])
    return L.end(10)


def test_auth_required():
    p = {"relay": R}
    assert run_check("auth-required", auth_log(), p).status == "pass"
    r = run_check("auth-required", auth_log(rcpt_code=250), p)
    assert r.status == "fail" and "not 530" in r.counterexamples[0]["why"]
    r = run_check("auth-required", auth_log(auth_in_tx=235), p)
    assert r.status == "fail" and "not 503" in r.counterexamples[0]["why"]
    assert not run_check("auth-required", LogBuilder().end(1), p).decided


def many_rcpts(n, code_after=452, text_after="4.5.3 Error: too many recipients", queued=None,
               limit=30):
    L = LogBuilder()
    steps = [("CONNECT", "", 220, "hi"), ("EHLO", "c.example", 250, "hi"),
             ("MAIL", "FROM:<a@c.example>", 250, "2.1.0 ok")]
    for i in range(n):
        ok = i < limit
        steps.append(("RCPT", f"TO:<u{i}@far.example>", 250 if ok else code_after,
                      "2.1.5 ok" if ok else text_after))
    steps += [("DATA", "", 354, "go"), ("DATA_END", "", 250, "2.0.0 queued")]
    accepted = [f"u{i}@far.example" for i in range(n) if i < limit or code_after < 300]
    L.add(E.ConnectionOpened(t=0, host=R, conn="r/c1", client_ip="10.0.0.5", port=25))
    for cmd, arg, code, text in steps:
        L.reply(0, R, "r/c1", "10.0.0.5", cmd, arg, code, text)
    L.add(E.MessageAccepted(t=1, host=R, msg="r/m1", trace="t1", conn="r/c1", client_ip="10.0.0.5",
                            helo="c.example", mail_from="a@c.example", rcpts=tuple(accepted),
                            size=100))
    for r in accepted[:queued if queued is not None else len(accepted)]:
        L.queue(1, R, "r/m1", "t1", r)
    return L.end(10)


def test_max_recipients_conformant_and_documented():
    p = {"relay": R, "mode": "conformant"}
    assert run_check("max-recipients-30", many_rcpts(35), p).status == "pass"
    # documented behaviour: 250 to all 35, only 30 queued -> this check holds,
    # conservation catches the 5 silently dropped recipients
    doc = many_rcpts(35, code_after=250, text_after="2.1.5 ok", queued=30)
    assert run_check("max-recipients-30", doc, {"relay": R}).status == "pass"
    cons = run_check("conservation", doc, {})
    assert cons.status == "fail" and len(cons.counterexamples) == 5
    # ...but the conformant mode demands 452 4.5.3
    r = run_check("max-recipients-30", doc, p)
    assert r.status == "fail" and "beyond the limit 30" in r.counterexamples[0]["why"]
    r = run_check("max-recipients-30", many_rcpts(35, 550, "5.5.3 too many"), p)
    assert r.status == "fail" and "expected 452 4.5.3" in r.counterexamples[0]["why"]


def test_max_recipients_conformant_fails_when_the_limit_is_lower():
    """Found by a planted fault in a real log: a relay that says "too many
    recipients" to recipient 30 enforces 29, not the promised 30."""
    p = {"relay": R, "mode": "conformant"}
    r = run_check("max-recipients-30", many_rcpts(35, limit=29), p)
    assert r.status == "fail" and r.counterexamples[0]["rcpt"] == "u29@far.example"
    assert "recipient 30 refused as too many" in r.counterexamples[0]["why"]
    # Either behaviour (no mode): only what is queued or relayed is judged.
    assert run_check("max-recipients-30", many_rcpts(35, limit=29), {"relay": R}).status == "pass"


def test_max_recipients_fails_when_more_are_queued():
    ev = many_rcpts(35, code_after=250, text_after="2.1.5 ok")
    r = run_check("max-recipients-30", ev, {"relay": R})
    assert r.status == "fail" and "queued for 35 recipients" in r.counterexamples[0]["why"]
    assert not run_check("max-recipients-30", many_rcpts(3), {"relay": R}).decided


def size_log(mail_code=552, ehlo="hi\nSIZE 31457280", accepted_size=None):
    L = LogBuilder()
    steps = [("CONNECT", "", 220, "hi"), ("EHLO", "c.example", 250, ehlo),
             ("MAIL", "FROM:<a@c.example> SIZE=40000000", mail_code,
              "5.3.4 Message size exceeds fixed limit")]
    conn = session(L, R, "10.0.0.5", steps)
    if accepted_size:
        L.add(E.MessageAccepted(t=1, host=R, msg="r/m1", trace="t1", conn=conn,
                                client_ip="10.0.0.5", helo="c.example", mail_from="a@c.example",
                                rcpts=("x@far.example",), size=accepted_size))
    return L.end(10)


def test_max_size():
    p = {"relay": R}
    assert run_check("max-size-30mb", size_log(), p).status == "pass"
    assert run_check("max-size-30mb", size_log(mail_code=250), p).status == "fail"
    r = run_check("max-size-30mb", size_log(ehlo="hi\nPIPELINING"), p)
    assert r.status == "fail" and "does not advertise SIZE" in r.counterexamples[0]["why"]
    r = run_check("max-size-30mb", size_log(accepted_size=32 * 1024 * 1024), p)
    assert r.status == "fail" and "over the limit" in r.counterexamples[-1]["why"]
    assert not run_check("max-size-30mb", probe(554), p).decided


def dnsbl_log(code=554, timeout_refused=None):
    L = LogBuilder()
    session(L, R, "192.0.2.99", [("CONNECT", "", 220, "hi"), ("EHLO", "x.example", 250, "hi"),
                                 ("MAIL", "FROM:<a@x.example>", 250, "2.1.0 ok"),
                                 ("RCPT", "TO:<b@relay-served.example>", code,
                                  "5.7.1 Service unavailable; blocked using zen")])
    if timeout_refused is not None:
        c = session(L, R, "192.0.2.77", [("CONNECT", "", 220, "hi")])
        L.add(E.PolicyDecision(t=1, host=R, conn=c, stage="dnsbl",
                               decision="fail-closed" if timeout_refused else "fail-open",
                               detail="zen.example timed out", client_ip="192.0.2.77"))
        L.reply(1, R, c, "192.0.2.77", "RCPT", "TO:<b@relay-served.example>",
                451 if timeout_refused else 250, "4.7.1 try later" if timeout_refused else "ok",
                stage="dnsbl" if timeout_refused else "")
    return L.end(10)


def test_dnsbl_check():
    p = {"host": R, "listed": ["192.0.2.99"]}
    assert run_check("dnsbl-check", dnsbl_log(), p).status == "pass"
    r = run_check("dnsbl-check", dnsbl_log(code=250), p)
    assert r.status == "fail" and "was not refused" in r.counterexamples[0]["why"]
    assert run_check("dnsbl-check", dnsbl_log(timeout_refused=True),
                     dict(p, fail="closed")).status == "pass"
    assert run_check("dnsbl-check", dnsbl_log(timeout_refused=False),
                     dict(p, fail="closed")).status == "fail"
    assert run_check("dnsbl-check", dnsbl_log(timeout_refused=True),
                     dict(p, fail="open")).status == "fail"
    assert not run_check("dnsbl-check", dnsbl_log(), {"host": R, "listed": ["1.1.1.1"]}).decided


def isp_log(isp_code=554, via_isp=False):
    L = LogBuilder()
    session(L, ISP, "198.51.100.40", [("CONNECT", "", 220, "hi"),
                                      ("EHLO", "cust.example", 250, "hi"),
                                      ("MAIL", "FROM:<a@cust.example>", 250, "2.1.0 ok"),
                                      ("RCPT", "TO:<x@far.example>", isp_code,
                                       "5.7.1 Relay access denied")])
    L.submit(5, CUST, "c/m1", "t1", ["x@far.example"])
    L.attempt(6, CUST, "c/m1", "t1", ["x@far.example"], ISP if via_isp else "mx.far.example",
              pref=None if via_isp else 10)
    return L.end(10)


def test_no_relay_via_isp_outbound():
    p = {"isp": ISP, "customer_ips": ["198.51.100.40"], "customer": CUST}
    assert run_check("no-relay-via-isp-outbound", isp_log(), p).status == "pass"
    assert run_check("no-relay-via-isp-outbound", isp_log(isp_code=250), p).status == "fail"
    r = run_check("no-relay-via-isp-outbound", isp_log(via_isp=True), p)
    assert r.status == "fail" and "through the ISP outbound" in r.counterexamples[0]["why"]


def smart_log(dest=SH, helo="mailer", helo_code=501, sh_pref=10):
    L = LogBuilder()
    L.submit(0, CUST, "c/m1", "t1", ["x@far.example"])
    L.attempt(1, CUST, "c/m1", "t1", ["x@far.example"], dest, pref=None)
    c = session(L, SH, "10.1.0.5", [("CONNECT", "", 220, "hi"),
                                    ("HELO", helo, helo_code, "5.5.2 need fully-qualified name"),
                                    ("MAIL", "FROM:<a@cust.example>", 250, "2.1.0 ok"),
                                    ("RCPT", "TO:<x@far.example>", 250, "2.1.5 ok"),
                                    ("DATA_END", "", 250, "2.0.0 ok")], accept="sh/m1")
    L.attempt(3, SH, "sh/m1", "tr-sh/m1", ["x@far.example"], "mx.far.example", pref=sh_pref)
    return L.end(10), c


def test_smart_host():
    p = {"smart_host": SH, "customer": CUST}
    assert run_check("smart-host", smart_log(helo="mailer.cust.example", helo_code=250)[0],
                     p).status == "pass"
    r = run_check("smart-host", smart_log(helo="mailer", helo_code=250)[0], p)
    assert r.status == "fail" and "not fully qualified" in r.counterexamples[0]["why"]
    r = run_check("smart-host", smart_log(dest="mx.far.example", helo_code=250,
                                          helo="m.cust.example")[0], p)
    assert r.status == "fail" and "not the smart host" in r.counterexamples[0]["why"]
    assert not run_check("smart-host", LogBuilder().end(1), p).decided
