"""Planted faults in real logs: the restricted relays (POP-before-SMTP,
sender affiliation, the 2525 fallback, blocked attachments, port-25
interception), the recipient limit and the smart host.

As in :mod:`test_planted_faults_hosted`: the real run meets its
expectation, the planted fault (what a bug of that kind leaves in the log)
fails the check on evidence, named in a counterexample.
"""
from __future__ import annotations

import dataclasses

import pytest

from mta import events as E
from helpers.planting import caught, every, first, held, insert, real_run, remove, rewrite


@pytest.fixture(scope="module")
def pop(tmp_path_factory):
    return real_run(tmp_path_factory, "pop-before-smtp-window")


@pytest.fixture(scope="module")
def affiliated(tmp_path_factory):
    return real_run(tmp_path_factory, "sender-affiliated")


@pytest.fixture(scope="module")
def alt_port(tmp_path_factory):
    return real_run(tmp_path_factory, "alt-port-2525")


@pytest.fixture(scope="module")
def limit(tmp_path_factory):
    return real_run(tmp_path_factory, "max-recipients-conformant")


@pytest.fixture(scope="module")
def attachments(tmp_path_factory):
    return real_run(tmp_path_factory, "blocked-attachments")


@pytest.fixture(scope="module")
def interception(tmp_path_factory):
    return real_run(tmp_path_factory, "port25-interception")


@pytest.fixture(scope="module")
def smart(tmp_path_factory):
    return real_run(tmp_path_factory, "smart-host")


def _reply(run, host, command, where=lambda e: True):
    return first(run.events, E.SmtpReply,
                 lambda e: e.host == host and e.command == command and where(e))


# -- pop-before-smtp ------------------------------------------------------------------------

PERFECTWEB = "relay.perfectweb.example"


def test_pop_before_smtp_catches_a_relay_after_the_window(pop):
    """Bug: the grant table never expires, so Alice still relays two hours
    after her only POP3 login (the real relay refuses that session's
    greeting)."""
    held(pop.judge("pop-before-smtp"))
    login = first(pop.events, E.Pop3Login, lambda e: e.user == "alice")
    late = _reply(pop, PERFECTWEB, "CONNECT", lambda e: e.client_ip == login.client_ip
                  and e.code >= 500)
    assert late.t - login.t > 5400
    ok = _reply(pop, PERFECTWEB, "RCPT", lambda e: e.client_ip == login.client_ip)
    relayed = dataclasses.replace(ok, t=late.t + 0.12, conn=late.conn)
    planted = insert(rewrite(pop.events, late, code=220, text=f"{PERFECTWEB} ESMTP", stage=""),
                     relayed)
    hit = caught(pop.judge("pop-before-smtp", planted), rcpt="friend@example.net",
                 event=relayed)
    assert "no POP3 login" in hit[0]["why"]


def test_pop_before_smtp_catches_a_login_not_honoured(pop):
    """Bug: the relay's grant lasts 60 minutes, not 90: a session 80
    minutes after the login is refused at the greeting."""
    login = first(pop.events, E.Pop3Login, lambda e: e.user == "alice")
    greet = _reply(pop, PERFECTWEB, "CONNECT", lambda e: e.client_ip == login.client_ip
                   and 3600 < e.t - login.t < 5400)
    refusal = dict(code=554, stage="pop-before-smtp",
                   text=f"5.7.1 <{login.client_ip}>: Client host rejected: Access denied")
    hit = caught(pop.judge("pop-before-smtp", rewrite(pop.events, greet, **refusal)),
                 event=dataclasses.replace(greet, **refusal))
    assert "whose login as alice holds" in hit[0]["why"]


# -- sender-affiliated ----------------------------------------------------------------------

def test_sender_affiliated_catches_a_foreign_sender_accepted(affiliated):
    """Bug: the ownership rule looks at the POP3 user only, so Dan, who
    authenticated with AUTH, may send as ceo@customer.example."""
    held(affiliated.judge("sender-affiliated"))
    r = _reply(affiliated, PERFECTWEB, "MAIL", lambda e: e.code == 553
               and "ceo@customer.example" in e.argument)
    accept = dict(code=250, text="2.1.0 Ok", mail_from="ceo@customer.example")
    hit = caught(affiliated.judge("sender-affiliated", rewrite(affiliated.events, r, **accept)),
                 event=dataclasses.replace(r, **accept))
    assert "not owned by dan" in hit[0]["why"]


def test_sender_affiliated_catches_an_own_domain_refused(affiliated):
    """Bug: the owner table is keyed by the wrong user, so Alice's own
    customer.example address is refused."""
    r = _reply(affiliated, PERFECTWEB, "MAIL", lambda e: e.code == 250
               and "alice@customer.example" in e.argument)
    refusal = dict(code=553, text="5.7.1 <alice@customer.example>: Sender address rejected",
                   mail_from=None)
    planted = rewrite(affiliated.events, r, **refusal)
    hit = caught(affiliated.judge("sender-affiliated", planted),
                 event=dataclasses.replace(r, **refusal))
    assert "alice's own" in hit[0]["why"]


# -- alt-port-2525 ------------------------------------------------------------------------------

ALICE = "alice.aol-like.example"


def _fallback(run):
    """Alice's first port-25 timeout and her 2525 submission after it."""
    out = first(run.events, E.ClientSubmission, lambda e: e.host == ALICE and e.port == 25
                and e.outcome == "timeout")
    sent = first(run.events, E.ClientSubmission, lambda e: e.host == ALICE and e.port == 2525
                 and e.t > out.t)
    return out, sent


def test_alt_port_catches_a_submission_the_relay_never_took(alt_port):
    """Bug: the 2525 listener answers 250 to DATA but never queues the
    message (the client believes it sent)."""
    held(alt_port.judge("alt-port-2525"))
    out, sent = _fallback(alt_port)
    acc = first(alt_port.events, E.MessageAccepted, lambda e: e.host == PERFECTWEB
                and out.t <= e.t <= sent.t)
    hit = caught(alt_port.judge("alt-port-2525", remove(alt_port.events, [acc])),
                 host=ALICE, event=sent, cause="not-accepted-on-alt-port")
    assert "accepted nothing on that port" in hit[0]["why"]


def test_alt_port_catches_a_client_that_never_falls_back(alt_port):
    """Bug: the client's fallback port is not configured: after the port-25
    timeout it never tries 2525 (and its mail stays unsent)."""
    out, sent = _fallback(alt_port)
    hit = caught(alt_port.judge("alt-port-2525", remove(alt_port.events, [sent])),
                 host=ALICE, event=out, cause="no-fallback")
    assert "did not try 2525" in hit[0]["why"]


# -- max-recipients-30 ----------------------------------------------------------------------

LIMITED = "relay.provider.example"


def test_max_recipients_catches_an_off_by_one_limit(limit):
    """Bug: the limit is tested with ``>`` after counting, so recipient 31
    is accepted and queued."""
    held(limit.judge("max-recipients-30"))
    r31 = _reply(limit, LIMITED, "RCPT", lambda e: e.code == 452)
    rcpt = r31.argument.removeprefix("TO:<").removesuffix(">")
    acc = first(limit.events, E.MessageAccepted, lambda e: e.host == LIMITED
                and e.conn == r31.conn and e.t > r31.t)
    q = first(limit.events, E.Queued, lambda e: e.host == LIMITED and e.msg == acc.msg)
    planted = rewrite(limit.events, r31, code=250, text="2.1.5 Ok")
    planted = rewrite(planted, acc, rcpts=acc.rcpts + (rcpt,))
    planted = insert(planted, dataclasses.replace(q, t=acc.t, rcpt=rcpt))
    res = limit.judge("max-recipients-30", planted)
    hit = caught(res, rcpt=rcpt, host=LIMITED)
    assert "recipient 31 accepted beyond the limit 30" in hit[0]["why"]
    caught(res, msg=acc.msg)                    # and queued for 31
    # Without a mode (either behaviour allowed) the queue still gives it away.
    hit = caught(limit.judge("max-recipients-30", planted, mode=None), msg=acc.msg)
    assert hit[0]["why"] == "message queued for 31 recipients (limit 30)"


def test_max_recipients_catches_a_limit_below_the_promise(limit):
    """Bug: the limit is tested with ``>=``, so recipient 30 already gets
    "452 4.5.3 too many recipients"."""
    r31 = _reply(limit, LIMITED, "RCPT", lambda e: e.code == 452)
    conn = [e for e in limit.events if isinstance(e, E.SmtpReply) and e.conn == r31.conn
            and e.command == "RCPT"]
    r30 = conn[conn.index(r31) - 1]
    assert r30.code == 250
    planted = rewrite(limit.events, r30, code=452, text=r31.text)
    hit = caught(limit.judge("max-recipients-30", planted), host=LIMITED,
                 rcpt=r30.argument.removeprefix("TO:<").removesuffix(">"))
    assert "recipient 30 refused as too many" in hit[0]["why"]


# -- blocked-attachments --------------------------------------------------------------------------

GCONNECT = "relay.gconnect.example"


def _submission(run, name):
    return first(run.events, E.ClientSubmission, lambda e: name in e.attachments)


def _data_end(run, sub):
    """The relay's end-of-DATA reply to ``sub`` (same client name, just before)."""
    return _reply(run, GCONNECT, "DATA_END", lambda e: e.helo == sub.host
                  and sub.t - 1 <= e.t <= sub.t)


def test_blocked_attachments_catches_a_blocked_file_accepted(attachments):
    """Bug: the name is compared before the trailing dot is dropped, so
    ``Holiday.SCR.`` gets through."""
    held(attachments.judge("blocked-attachments"))
    sub = _submission(attachments, "Holiday.SCR.")
    end = _data_end(attachments, sub)
    sent = dict(outcome="sent", code=250, detail="1 recipients")
    planted = rewrite(attachments.events, sub, **sent)
    planted = rewrite(planted, end, code=250, stage="",
                      text=f"2.0.0 Ok: queued as {GCONNECT}/m99")
    hit = caught(attachments.judge("blocked-attachments", planted), host=sub.host,
                 event=dataclasses.replace(sub, **sent))
    assert "'Holiday.SCR.' answered sent 250" in hit[0]["why"]


def test_blocked_attachments_catches_a_refused_message_queued_anyway(attachments):
    """Bug: the attachment filter runs after the queue file is written, so
    the client sees 550 but the message is queued (and relayed) all the
    same."""
    sub = _submission(attachments, "invoice.pdf.exe")
    end = _data_end(attachments, sub)
    ok = first(attachments.events, E.MessageAccepted, lambda e: e.host == GCONNECT)
    kept = dataclasses.replace(ok, t=end.t, msg=f"{GCONNECT}/m99", trace="kept.1",
                               conn=end.conn, client_ip=end.client_ip, helo=end.helo,
                               mail_from=end.mail_from, rcpts=end.rcpts)
    hit = caught(attachments.judge("blocked-attachments", insert(attachments.events, kept)),
                 msg=kept.msg, event=end)
    assert "accepted all the same" in hit[0]["why"]


def test_blocked_attachments_catches_a_harmless_file_refused(attachments):
    """Bug: the rule matches ``.pdf`` inside ``invoice.pdf.exe`` and so
    refuses every PDF."""
    sub = _submission(attachments, "report.pdf")
    end = _data_end(attachments, sub)
    text = '5.7.1 Attachment "report.pdf" refused: .pdf files are not permitted'
    planted = rewrite(attachments.events, sub, outcome="rejected", code=550,
                      detail=f"DATA: {text}")
    planted = rewrite(planted, end, code=550, stage="attachments", text=text)
    res = attachments.judge("blocked-attachments", planted)
    caught(res, host=sub.host)
    hit = caught(res, event=dataclasses.replace(end, code=550, stage="attachments", text=text))
    assert "not on the list" in hit[0]["why"]


# -- port25-interception --------------------------------------------------------------------------

def test_port25_interception_catches_a_banner_not_noticed(interception):
    """Bug: the client does not compare the banner with the relay's name, so
    it talks to the ISP's server as if it were the relay."""
    held(interception.judge("port25-interception"))
    said = first(interception.events, E.ClientSubmission, lambda e: e.outcome == "intercepted")
    conn = first(interception.events, E.ConnectAttempt, lambda e: e.host == said.host
                 and e.port == 25 and e.t <= said.t)
    hit = caught(interception.judge("port25-interception", remove(interception.events, [said])),
                 event=conn, host=said.host)
    assert "did not notice" in hit[0]["why"]


# -- smart-host ---------------------------------------------------------------------------------------

SMART, MAILER = "smarthost.provider.example", "mailer.customer.example"


def test_smart_host_catches_a_customer_delivering_direct(smart):
    """Bug: the customer mailer's relayhost setting is lost for one domain,
    which it delivers to by MX instead."""
    held(smart.judge("smart-host"))
    a = first(smart.events, E.AttemptStarted, lambda e: e.host == MAILER)
    mx = first(smart.events, E.AttemptStarted, lambda e: e.host == SMART)
    direct = dict(dest_host=mx.dest_host, dest_ip=mx.dest_ip, preference=mx.preference)
    hit = caught(smart.judge("smart-host", rewrite(smart.events, a, **direct)), msg=a.msg,
                 host=mx.dest_host)
    assert "not the smart host" in hit[0]["why"]


def test_smart_host_catches_mail_after_an_unqualified_helo(smart):
    """Bug: the smart host's HELO restriction is missing: mail is taken from
    a client that said ``EHLO mailer``."""
    acc = first(smart.events, E.MessageAccepted, lambda e: e.host == SMART)
    ehlo = _reply(smart, SMART, "EHLO", lambda e: e.conn == acc.conn)
    planted = rewrite(smart.events, ehlo, argument="mailer")
    hit = caught(smart.judge("smart-host", planted), host=SMART,
                 event=dataclasses.replace(ehlo, argument="mailer"))
    assert "'mailer', not fully qualified" in hit[0]["why"]
    assert every(planted, E.MessageAccepted, lambda e: e.conn == acc.conn)
