"""Planted faults in real logs: the cross-cutting fate checks and the
hosted-domain service (primary and secondary MX, the dial-up primary, the
queueing server, filters, relay control).

Each test takes the log of one library scenario's real run, checks that the
expectation the scenario makes of it is met, plants the one fault a bug of
the kind the check exists for would leave in the log, and asserts that the
check fails on evidence with a counterexample naming what was planted.
"""
from __future__ import annotations

import dataclasses

import pytest

from mta import events as E
from sim.evidence.model import Evidence
from helpers.planting import (
    caught, every, first, held, insert, move, real_run, remove, rewrite, rewrite_each)


@pytest.fixture(scope="module")
def fallback(tmp_path_factory):
    return real_run(tmp_path_factory, "mx-fallback")


@pytest.fixture(scope="module")
def dialup(tmp_path_factory):
    return real_run(tmp_path_factory, "dialup-primary-loses-mail")


@pytest.fixture(scope="module")
def etrn(tmp_path_factory):
    return real_run(tmp_path_factory, "queueing-server-etrn")


@pytest.fixture(scope="module")
def filters(tmp_path_factory):
    return real_run(tmp_path_factory, "filters-on-every-mx")


@pytest.fixture(scope="module")
def relay(tmp_path_factory):
    return real_run(tmp_path_factory, "no-open-relay")


@pytest.fixture(scope="module")
def outbound(tmp_path_factory):
    return real_run(tmp_path_factory, "no-relay-via-isp-outbound")


MX1, MX2 = "mx1.example.net", "mx2.example.net"


def _relayed_by_secondary(run):
    return first(run.events, E.Relayed, lambda e: e.host == MX2 and e.dest_host == MX1)


# -- conservation ---------------------------------------------------------------------

def test_conservation_catches_a_copy_accepted_and_never_queued(fallback):
    """Bug: the primary answers 250 after DATA, then drops the copy when
    local delivery raises (neither queued nor delivered)."""
    held(fallback.judge("conservation"))
    d = first(fallback.events, E.DeliveredToMailbox, lambda e: e.host == MX1)
    q = first(fallback.events, E.Queued,
              lambda e: e.host == MX1 and e.msg == d.msg and e.rcpt == d.rcpt)
    planted = remove(fallback.events, [q, d])
    hit = caught(fallback.judge("conservation", planted), msg=d.msg, rcpt=d.rcpt, host=MX1,
                 cause="never-queued")
    assert hit[0]["why"].startswith("lost")


def test_conservation_catches_a_relay_the_next_hop_never_recorded(fallback):
    """Bug: the primary acknowledges the secondary's DATA before the message
    is durable and crashes (the secondary dequeues on the 250)."""
    r = _relayed_by_secondary(fallback)
    acc = first(fallback.events, E.MessageAccepted,
                lambda e: e.host == MX1 and e.trace == r.trace and r.rcpt in e.rcpts)
    hit = caught(fallback.judge("conservation", remove(fallback.events, [acc])),
                 msg=r.msg, rcpt=r.rcpt, host=MX2, cause="relayed-unconfirmed")
    assert hit[0]["why"].startswith("relayed-unconfirmed")


# -- bounce-dsn -------------------------------------------------------------------------

def _give_up(run):
    b = first(run.events, E.Bounced, lambda e: bool(e.dsn_trace))
    d = first(run.events, E.DsnCreated, lambda e: e.trace == b.dsn_trace)
    return b, d


def test_bounce_dsn_catches_a_missing_dsn(dialup):
    """Bug: the give-up path records the bounce but never creates the DSN."""
    held(dialup.judge("bounce-dsn"))
    b, d = _give_up(dialup)
    hit = caught(dialup.judge("bounce-dsn", remove(dialup.events, [d])),
                 msg=b.msg, rcpt=b.rcpt, event=b)
    assert "0 DSNs" in hit[0]["why"]


def test_bounce_dsn_catches_a_dsn_to_the_recipient(dialup):
    """Bug: the DSN is addressed to the failed recipient, not the sender."""
    b, d = _give_up(dialup)
    planted = rewrite(dialup.events, d, to=b.rcpt)
    hit = caught(dialup.judge("bounce-dsn", planted), msg=b.msg, rcpt=b.rcpt)
    assert "not the original sender" in hit[0]["why"]


def test_bounce_dsn_catches_a_dsn_with_a_return_path(dialup):
    """Bug: the DSN goes out from postmaster instead of <> (a bounce loop
    waiting to happen, RFC 5321 §4.5.5)."""
    b, d = _give_up(dialup)
    planted = rewrite(dialup.events, d, mail_from=f"postmaster@{b.host}")
    hit = caught(dialup.judge("bounce-dsn", planted), msg=b.msg, rcpt=b.rcpt)
    assert "not <>" in hit[0]["why"]


# -- sender-gives-up ----------------------------------------------------------------------

def test_sender_gives_up_catches_a_silent_give_up(dialup):
    """Bug: the sender expires the copy without telling anyone (no DSN)."""
    held(dialup.judge("sender-gives-up"))
    b, d = _give_up(dialup)
    hit = caught(dialup.judge("sender-gives-up", remove(dialup.events, [d])),
                 msg=b.msg, rcpt=b.rcpt, host=b.host)
    assert "bounced-no-dsn" in hit[0]["why"]


def test_sender_gives_up_catches_a_give_up_after_one_round(dialup):
    """Bug: the sender takes its first 4xx as final and bounces at once."""
    b, d = _give_up(dialup)
    mine = lambda e: e.host == b.host and e.msg == b.msg     # noqa: E731
    d1 = first(dialup.events, E.Deferred, lambda e: mine(e) and e.rcpt == b.rcpt)
    later = [e for e in dialup.events if isinstance(e, (E.AttemptStarted, E.Deferred))
             and mine(e) and e.t > d1.t]
    planted = move(move(remove(dialup.events, later), b, d1.t + 1), d, d1.t + 1)
    hit = caught(dialup.judge("sender-gives-up", planted), msg=b.msg, rcpt=b.rcpt)
    assert "1 rounds" in hit[0]["why"]
    # The same bug reported as a permanent failure (a timeout taken for "host
    # not found"): no server answered 5xx, so it is still a give-up.
    early = first(planted, E.Bounced, lambda e: e.msg == b.msg and e.rcpt == b.rcpt)
    planted = rewrite(planted, early, code=550, text="5.4.4 Host not found",
                      reason="unroutable")
    hit = caught(dialup.judge("sender-gives-up", planted), msg=b.msg, rcpt=b.rcpt)
    assert "1 rounds" in hit[0]["why"]


# -- dialup-primary-loses-mail, queueing-server-etrn (bounces) ---------------------------------

QS, DIAL, CUSTOMER = "queue.isp.example", "dial.customer.example", "customer.example"
LOSES = {"primary": DIAL, "domain": CUSTOMER}   # the queueing-server run does not name it


def _bounce_held_copy(run):
    """The queueing server gives a held copy up a minute after queueing it,
    while the customer's link is down: its relay replaced by a bounce."""
    r = first(run.events, E.Relayed, lambda e: e.host == QS and e.dest_host == DIAL)
    q = first(run.events, E.Queued, lambda e: e.host == QS and e.msg == r.msg and e.rcpt == r.rcpt)
    bounce = E.Bounced(t=q.t + 60, host=QS, msg=r.msg, trace=r.trace, rcpt=r.rcpt, code=421,
                       text="4.4.2 Connection to the destination timed out", reason="expired")
    return r, insert(remove(run.events, [r]), bounce)


def test_dialup_primary_loses_mail_catches_a_bounce_while_the_primary_is_down(etrn):
    """The warning the check reproduces: mail for the dial-up domain given up
    while its primary is offline.  The queueing-server run keeps every copy
    (the guarantee holds there); one give-up planted violates it."""
    held(etrn.judge("dialup-primary-loses-mail", nth=None, **LOSES))
    r, planted = _bounce_held_copy(etrn)
    assert Evidence(planted).down_periods(DIAL)
    hit = caught(etrn.judge("dialup-primary-loses-mail", planted, nth=None, **LOSES),
                 msg=r.msg, rcpt=r.rcpt, host=QS, cause="sender-gave-up-while-link-down")
    assert "primary link down at give-up" in hit[0]["why"]


def test_queueing_server_etrn_catches_a_held_copy_bounced(etrn):
    """Bug: the queueing server applies an ordinary sender's short retry
    limit to the customer's held mail."""
    held(etrn.judge("queueing-server-etrn"))
    r, planted = _bounce_held_copy(etrn)
    hit = caught(etrn.judge("queueing-server-etrn", planted), msg=r.msg, rcpt=r.rcpt)
    assert "bounced although" in hit[0]["why"]


def _etrn_releasing(run):
    """The first accepted ETRN with mail held, and the queueing server's
    release, attempts and connections of the minute after it."""
    ev = Evidence(run.events)
    et = first(run.events, E.EtrnRequest,
               lambda e: 200 <= e.code < 300 and ev.held_copies(QS, CUSTOMER, e.t))
    run_of = [e for e in run.events if e.host == QS and et.t <= e.t <= et.t + 60
              and isinstance(e, (E.Released, E.AttemptStarted, E.ConnectAttempt))]
    assert any(isinstance(e, E.AttemptStarted) for e in run_of)
    return et, run_of


def test_queueing_server_etrn_catches_an_etrn_that_starts_nothing(etrn):
    """Bug: ETRN is answered 253, but the queue run never starts (no
    attempt, no connection to the customer)."""
    et, gone = _etrn_releasing(etrn)
    a = first(gone, E.AttemptStarted)
    res = etrn.judge("queueing-server-etrn", remove(etrn.events, gone))
    caught(res, msg=a.msg, rcpt=a.rcpts[0], event=et)
    assert any(c["why"].startswith("no new connection") for c in res.counterexamples)


def test_queueing_server_etrn_catches_an_etrn_refused_while_mail_is_held(etrn):
    """Bug: the queueing server does not know the ``#domain`` node form and
    answers 458, releasing nothing."""
    et, gone = _etrn_releasing(etrn)
    refusal = dict(code=458, text=f"Unable to queue messages for node {et.argument}")
    planted = rewrite(remove(etrn.events, gone), et, **refusal)
    hit = caught(etrn.judge("queueing-server-etrn", planted),
                 event=dataclasses.replace(et, **refusal), host=QS)
    assert hit[0]["why"].startswith("ETRN answered 458 while")


# -- mx-fallback ------------------------------------------------------------------------------

def test_mx_fallback_catches_a_relay_into_the_outage(fallback):
    """Bug: the secondary counts a copy as relayed when its connection to the
    down primary fails."""
    held(fallback.judge("mx-fallback"))
    (down_a, down_b), = Evidence(fallback.events).down_periods(MX1)[:1]
    r = first(fallback.events, E.Relayed, lambda e: e.host == MX2 and e.dest_host == MX1)
    acc = first(fallback.events, E.MessageAccepted, lambda e: e.host == MX2 and e.msg == r.msg)
    assert down_a <= acc.t < down_b
    planted = move(fallback.events, r, (acc.t + down_b) / 2)
    hit = caught(fallback.judge("mx-fallback", planted), msg=r.msg, rcpt=r.rcpt)
    assert "while its link was down" in hit[0]["why"]


def test_mx_fallback_catches_a_copy_the_secondary_never_flushes(fallback):
    """Bug: the secondary keeps a copy queued after the primary comes back
    (its relay never happens)."""
    r = _relayed_by_secondary(fallback)
    hit = caught(fallback.judge("mx-fallback", remove(fallback.events, [r])),
                 msg=r.msg, rcpt=r.rcpt, host=MX2)
    assert "still queued" in hit[0]["why"]


# -- filters-on-every-mx ---------------------------------------------------------------------

def test_filters_on_every_mx_catches_a_blocked_client_delivered(filters):
    """Bug: one MX's access table misses the blocked network: a message from
    the blocked bot is accepted there and reaches a mailbox."""
    held(filters.judge("filters-on-every-mx"))
    bot = first(filters.events, E.ConnectionOpened, lambda e: e.client_ip.startswith("198.18."))
    d = first(filters.events, E.DeliveredToMailbox)
    acc = first(filters.events, E.MessageAccepted, lambda e: e.trace == d.trace)
    conn = [e for e in filters.events if getattr(e, "conn", None) == acc.conn
            and e.host == acc.host and hasattr(e, "client_ip")]
    planted = rewrite_each(filters.events, conn, client_ip=bot.client_ip)
    hit = caught(filters.judge("filters-on-every-mx", planted), trace=d.trace, rcpt=d.rcpt)
    assert bot.client_ip in hit[0]["why"]


def test_filters_on_every_mx_catches_a_secondary_without_the_filter(filters):
    """Bug: the secondary lacks the primary's access table (the documented
    risk): the bot's RCPT is accepted there, relayed to the primary, whose
    only client is the secondary, and delivered."""
    bot = first(filters.events, E.SmtpReply, lambda e: e.host == MX2 and e.command == "RCPT"
                and e.client_ip.startswith("198.18.") and e.code >= 500)
    relay_in = first(filters.events, E.MessageAccepted, lambda e: e.host == MX1)
    ip = {h: first(filters.events, E.ConnectAttempt, lambda e: e.dest_host == h).dest_ip
          for h in (MX1, MX2)}
    rcpt, trace = "alice@example.net", "bot.planted"
    ok = dict(code=250, text="2.1.5 Ok", rcpts=(rcpt,), stage="")
    chain = [
        E.MessageAccepted(t=bot.t + 0.1, host=MX2, msg=f"{MX2}/m900", trace=trace,
                          conn=bot.conn, client_ip=bot.client_ip, helo=bot.helo,
                          mail_from=bot.mail_from or "", rcpts=(rcpt,), size=1000),
        E.Relayed(t=bot.t + 1, host=MX2, msg=f"{MX2}/m900", trace=trace, rcpt=rcpt,
                  dest_host=MX1, dest_ip=ip[MX1]),
        dataclasses.replace(relay_in, t=bot.t + 1, msg=f"{MX1}/m900", trace=trace,
                            client_ip=ip[MX2], rcpts=(rcpt,)),
        E.DeliveredToMailbox(t=bot.t + 1, host=MX1, msg=f"{MX1}/m900", trace=trace, rcpt=rcpt,
                             mailbox="alice"),
    ]
    planted = rewrite(filters.events, bot, **ok)
    for e in chain:
        planted = insert(planted, e)
    hit = caught(filters.judge("filters-on-every-mx", planted), trace=trace, rcpt=rcpt,
                 host=MX2, cause="blocked-mail-delivered")
    assert f"mail from blocked {bot.client_ip} accepted by {MX2}" in hit[0]["why"]


# -- no-open-relay ---------------------------------------------------------------------------

def test_no_open_relay_catches_a_percent_hack_accepted(relay):
    """Bug: the MX treats ``user%other@itself`` as local and accepts it."""
    held(relay.judge("no-open-relay"))
    r = first(relay.events, E.SmtpReply, lambda e: e.host == MX1 and e.command == "RCPT"
              and "%" in e.argument and "@mx1.example.net" in e.argument)
    planted = rewrite(relay.events, r, code=250, text="2.1.5 Ok")
    caught(relay.judge("no-open-relay", planted), rcpt="relaytest%nmap.scanme.org@mx1.example.net",
           host=MX1)


def test_no_open_relay_catches_a_refused_recipient_kept_in_the_envelope(relay):
    """Bug: the RCPT is answered 554 but the recipient stays in the
    transaction, and the message is accepted for it."""
    acc = first(relay.events, E.MessageAccepted, lambda e: e.host == MX1)
    planted = rewrite(relay.events, acc, rcpts=acc.rcpts + ("relaytest@nmap.scanme.org",))
    caught(relay.judge("no-open-relay", planted), msg=acc.msg,
           rcpt="relaytest@nmap.scanme.org")


# -- no-relay-via-isp-outbound -----------------------------------------------------------------

ISP, GW = "smtp.isp.example", "gw.customer.example"


def test_isp_outbound_catches_a_customer_server_relayed(outbound):
    """Bug: the ISP's outbound server trusts every address it routes, its
    customers' servers included."""
    held(outbound.judge("no-relay-via-isp-outbound"))
    r = first(outbound.events, E.SmtpReply, lambda e: e.host == ISP and e.command == "RCPT"
              and e.code >= 500)
    planted = rewrite(outbound.events, r, code=250, text="2.1.5 Ok")
    caught(outbound.judge("no-relay-via-isp-outbound", planted), host=ISP,
           event=dataclasses.replace(r, code=250, text="2.1.5 Ok"))


def test_isp_outbound_catches_a_customer_server_using_it_as_smart_host(outbound):
    """Bug: the customer server is configured with the ISP's outbound server
    as relayhost instead of looking up MX records."""
    a = first(outbound.events, E.AttemptStarted, lambda e: e.host == GW)
    isp = first(outbound.events, E.ConnectAttempt, lambda e: e.dest_host == ISP)
    planted = rewrite(outbound.events, a, dest_host=ISP, dest_ip=isp.dest_ip, preference=None)
    hit = caught(outbound.judge("no-relay-via-isp-outbound", planted), msg=a.msg, host=ISP)
    assert "through the ISP outbound" in hit[0]["why"]
