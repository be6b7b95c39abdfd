"""The cross-cutting protocol checks: mx-order, reply-codes, full-logging."""
from __future__ import annotations

from collections import defaultdict
from typing import Literal

from pydantic import Field

from mta import events as E
from sim.evidence.checks.base import check, cx, enhanced_code, undecidable, verdict
from sim.evidence.checks.params import Count, Duration, Hosts, Params, Texts
from sim.evidence.lifecycle import domain_of
from sim.evidence.model import Evidence


def _mx_prefs(attempts: list[E.AttemptStarted]) -> dict[str, dict[str, int]]:
    """domain -> {MX host: preference}, as the attempts show them."""
    prefs: dict[str, dict[str, int]] = defaultdict(dict)
    for a in attempts:
        for r in a.rcpts:
            prefs[domain_of(r)].setdefault(a.dest_host, a.preference)
    return prefs


class MxOrderParams(Params):
    null_mx_domains: Texts = Field([], description="domains with a null MX (RFC 7505)")
    null_mx_max_delay: Duration = Field(
        60, description="longest wait from queueing to the 556 bounce of null-MX mail")
    shuffle_min_rounds: Count = Field(
        20, description="rounds from one host before equal preferences must show a shuffle")


@check("mx-order", MxOrderParams)
def mx_order(ev: Evidence, params: MxOrderParams):
    """Senders try MX hosts in preference order and fall back on failure.

    Judged on AttemptStarted events that carry a ``preference``.  Per (host,
    msg), delivery rounds are split by the Deferred events that end them.
    In a round: the first attempt is at the lowest preference seen for the
    recipient's domain (lower than the host's own, for a relaying MX);
    preferences never decrease; a round that ends deferred has tried every
    higher preference the host may use (RFC 5321 §5.1: a relaying MX only
    uses preferences below its own).  Equal preferences may come in any
    order (their shuffle is not judged).

    Equal preferences must be shuffled: with ``shuffle_min_rounds`` (default
    20) or more rounds from one host whose first choice was a preference
    shared by several MX hosts, not every round may start at the same one.

    Params (:class:`MxOrderParams`): recipients at ``null_mx_domains`` must
    bounce with 556 and 5.1.10 and no attempt, within ``null_mx_max_delay``
    of being queued; ``shuffle_min_rounds``.
    """
    gid = "mx-order"
    attempts = [e for e in ev.of(E.AttemptStarted) if e.preference is not None]
    null_domains = [d.lower() for d in params.null_mx_domains]
    null_delay = params.null_mx_max_delay
    if not attempts and not null_domains:
        return undecidable(gid, "no AttemptStarted events with an MX preference in the log")
    prefs = _mx_prefs(attempts)
    cxs = []
    per_msg: dict[tuple[str, str], list[E.Event]] = defaultdict(list)
    for e in ev.events:
        if (isinstance(e, E.AttemptStarted) and e.preference is not None) or \
                isinstance(e, (E.Deferred, E.Relayed)):
            per_msg[(e.host, e.msg)].append(e)
    rounds_checked = 0
    shuffle_min = params.shuffle_min_rounds
    firsts: dict[tuple[str, str, int], list[str]] = defaultdict(list)
    for (host, msg), evs in per_msg.items():
        rnd: list[E.AttemptStarted] = []
        for e in evs + [None]:
            if isinstance(e, E.AttemptStarted):
                rnd.append(e)
                continue
            if not rnd:
                continue
            rounds_checked += 1
            dom = domain_of(rnd[0].rcpts[0])
            mxs = prefs.get(dom, {})
            own = mxs.get(host)
            usable = sorted({p for h, p in mxs.items() if own is None or p < own})
            where = dict(msg=msg, trace=rnd[0].trace, hosts=[host] + [a.dest_host for a in rnd],
                         times=[a.t for a in rnd], events=rnd + ([e] if e else []))
            ps = [a.preference for a in rnd]
            firsts[(host, dom, ps[0])].append(rnd[0].dest_host)
            if usable and ps[0] != usable[0]:
                cxs.append(cx(f"round started at preference {ps[0]}, not at the most "
                              f"preferred {usable[0]}", **where))
            if any(b < a for a, b in zip(ps, ps[1:])):
                cxs.append(cx(f"preferences tried out of order: {ps}", **where))
            if isinstance(e, E.Deferred):
                higher = [p for p in usable if p > max(ps)]
                if higher:
                    cxs.append(cx(f"deferred after preference {max(ps)} without falling back "
                                  f"to {higher}", **where))
            rnd = []
    # RFC 5321 §5.1: equal preferences MUST be randomized.  Over enough
    # rounds, always starting at the same one of several equals is not random.
    for (host, dom, pref), dests in firsts.items():
        equals = sorted(h for h, p in prefs.get(dom, {}).items() if p == pref and h != host)
        if len(equals) > 1 and len(dests) >= shuffle_min and len(set(dests)) == 1:
            cxs.append(cx(f"{len(dests)} rounds for {dom} all started at {dests[0]}, though "
                          f"{equals} share preference {pref}", hosts=[host] + equals))
    nulls = 0
    if null_domains:
        for lf in ev.lifecycles:
            if domain_of(lf.rcpt) not in null_domains or lf.queued_t is None:
                continue
            nulls += 1
            fe = lf.fate_event
            ok = (isinstance(fe, E.Bounced) and fe.code == 556 and "5.1.10" in fe.text
                  and not lf.attempts and fe.t - lf.queued_t <= null_delay)
            if not ok:
                cxs.append(cx("null MX domain not failed at once with 556 5.1.10",
                              msg=lf.msg, trace=lf.trace, rcpt=lf.rcpt, hosts=[lf.host],
                              times=[lf.queued_t], events=lf.events))
        if nulls == 0:
            return undecidable(gid, f"no mail was queued for the null-MX domains {null_domains}")
    return verdict(gid, cxs,
                   ok=f"{rounds_checked} delivery rounds in preference order with fallback; "
                      f"{nulls} null-MX recipients failed at once",
                   bad="{n} MX-order violations",
                   judged=rounds_checked + nulls, unit="delivery rounds and null-MX recipients")


# Commands whose replies RFC 2034 leaves without enhanced codes.
_NO_ENHANCED = {"CONNECT", "EHLO", "HELO", "LHLO"}
_DEFAULT_STAGE_CLASSES = {"greylist": 4, "greylisting": 4, "relay": 5, "lockdown": 5}


class ReplyCodesParams(Params):
    stage_classes: dict[str, Literal[4, 5]] = Field(
        {}, description="policy stage -> the reply class its refusals must have, over "
                        "the defaults (greylist 4, relay 5, lockdown 5)")
    hosts: Hosts | None = Field(None, description="hosts judged (default: all)")


@check("reply-codes", ReplyCodesParams)
def reply_codes(ev: Evidence, params: ReplyCodesParams):
    """Transient refusals are 4xx, permanent ones 5xx, with RFC 3463 codes.

    On SmtpReply events: an enhanced code, when present, has the class of
    the reply (2.x.x with 2yz ...); on a host that sends enhanced codes at
    all, every 4xx/5xx reply (other than to CONNECT/HELO/EHLO) carries one;
    a reply decided by a stage in ``stage_classes`` ({stage: 4 or 5};
    defaults: greylist 4, relay 5, lockdown 5) has that class.  On the client
    side, a Deferred never records a 5xx reply (a permanent refusal must not
    be retried).  Params (:class:`ReplyCodesParams`): ``stage_classes``,
    ``hosts``.
    """
    gid = "reply-codes"
    replies = ev.of(E.SmtpReply)
    want = set(params.hosts) if params.hosts is not None else None
    if want is not None:
        replies = [r for r in replies if r.host in want]
    if not replies:
        return undecidable(gid, "no SmtpReply events in the log")
    classes = dict(_DEFAULT_STAGE_CLASSES, **params.stage_classes)
    enhanced_hosts = {r.host for r in replies if enhanced_code(r.text)}
    cxs = []
    for r in replies:
        where = dict(hosts=[r.host], times=[r.t], events=[r])
        ec = enhanced_code(r.text)
        if ec and int(ec[0]) != r.code // 100:
            cxs.append(cx(f"{r.code} carries enhanced code {ec} of another class", **where))
        if (r.code >= 400 and not ec and r.host in enhanced_hosts
                and r.command.upper() not in _NO_ENHANCED):
            cxs.append(cx(f"{r.code} to {r.command} without an enhanced code, though this "
                          f"host sends them", **where))
        want_cls = classes.get(r.stage)
        if want_cls and r.code >= 400 and r.code // 100 != int(want_cls):
            cxs.append(cx(f"stage {r.stage!r} refused with {r.code}, expected {want_cls}xx",
                          **where))
    for d in ev.of(E.Deferred):
        if d.code >= 500 and (want is None or d.host in want):
            cxs.append(cx(f"deferred (will retry) on a permanent {d.code} reply", msg=d.msg,
                          trace=d.trace, rcpt=d.rcpt, hosts=[d.host], times=[d.t], events=[d]))
    return verdict(gid, cxs, ok=f"{len(replies)} replies with consistent codes",
                   bad="{n} replies with wrong codes",
                   judged=len(replies), unit="replies")


class FullLoggingParams(Params):
    hosts: Hosts | None = Field(None, description="hosts judged (default: all)")


@check("full-logging", FullLoggingParams)
def full_logging(ev: Evidence, params: FullLoggingParams):
    """Every SMTP connection leaves replies with client, HELO, envelope.

    For each server connection (ConnectionOpened with service ``smtp``):
    at least one SmtpReply; every reply names the connection's client
    address; after a 2xx to HELO/EHLO, later replies carry that HELO name;
    after a 2xx to MAIL, later replies of the transaction carry the sender;
    the reply to DATA_END lists at least as many recipients as got a 2xx;
    every MessageAccepted follows a 2xx DATA_END reply on its connection.
    No SmtpReply names a connection that was never opened.
    Params (:class:`FullLoggingParams`): ``hosts``.
    """
    gid = "full-logging"
    want = set(params.hosts) if params.hosts is not None else None
    opened = {e.conn: e for e in ev.of(E.ConnectionOpened)
              if e.service == "smtp" and (want is None or e.host in want)}
    replies: dict[str, list[E.SmtpReply]] = defaultdict(list)
    for e in ev.of(E.SmtpReply):
        if want is None or e.host in want:
            replies[e.conn].append(e)
    if not opened:
        return undecidable(gid, "no ConnectionOpened (service smtp) events in the log")
    cxs = []
    for conn in replies:
        if conn not in opened:
            r0 = replies[conn][0]
            cxs.append(cx("reply on a connection that was never logged as opened",
                          hosts=[r0.host], times=[r0.t], events=replies[conn][:3]))
    accepted_by_conn: dict[str, list[E.MessageAccepted]] = defaultdict(list)
    for e in ev.of(E.MessageAccepted):
        accepted_by_conn[e.conn].append(e)
    for conn, op in opened.items():
        rs = replies.get(conn, [])
        where = dict(hosts=[op.host])
        if not rs:
            cxs.append(cx("connection with no logged reply", times=[op.t], events=[op], **where))
            continue
        helo, sender, nrcpt = "", None, 0
        for r in rs:
            bad = []
            if r.client_ip != op.client_ip:
                bad.append(f"client address {r.client_ip!r}, connection from {op.client_ip!r}")
            if helo and r.helo != helo and r.command.upper() not in ("HELO", "EHLO"):
                bad.append(f"HELO name {r.helo!r}, client said {helo!r}")
            if sender is not None and r.command.upper() in ("RCPT", "DATA", "DATA_END") \
                    and r.mail_from is None:
                bad.append("no envelope sender on a reply inside a transaction")
            if r.command.upper() == "DATA_END" and len(r.rcpts) < nrcpt:
                bad.append(f"{len(r.rcpts)} recipients logged, {nrcpt} were accepted")
            if bad:
                cxs.append(cx("; ".join(bad), times=[r.t], events=[op, r], **where))
            cmd, ok = r.command.upper(), 200 <= r.code < 300
            if cmd in ("HELO", "EHLO") and ok:
                helo = r.helo or r.argument.strip()
                sender, nrcpt = None, 0
            elif cmd == "MAIL" and ok:
                sender, nrcpt = r.mail_from if r.mail_from is not None else "", 0
            elif cmd == "RCPT" and ok:
                nrcpt += 1
            elif cmd in ("RSET", "DATA_END"):
                sender, nrcpt = None, 0
        for m in accepted_by_conn.get(conn, []):
            if not any(r.command.upper() == "DATA_END" and 200 <= r.code < 300
                       and r.t <= m.t + 1e-9 for r in rs):
                cxs.append(cx("message accepted without a logged 2xx reply to end of DATA",
                              msg=m.msg, trace=m.trace, times=[m.t], events=[m], **where))
    return verdict(gid, cxs, ok=f"{len(opened)} connections fully logged",
                   bad="{n} logging gaps",
                   judged=len(opened), unit="connections")
