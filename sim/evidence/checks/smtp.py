"""The cross-cutting protocol checks: reply-codes, full-logging (mx-order is in
:mod:`.mx`)."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from mta import events as E
from mta.maillog import maillog_lines
from sim.actors.generate import SIM_EPOCH
from sim.evidence.checks.base import ParamError, check, cx, enhanced_code, undecidable, verdict
from sim.evidence.checks.maillog import judge_maillog
from sim.evidence.checks.params.smtp import FullLoggingParams, ReplyCodesParams
from sim.evidence.model import Evidence


# Commands whose replies RFC 2034 leaves without enhanced codes.
_NO_ENHANCED = {"CONNECT", "EHLO", "HELO", "LHLO"}
_DEFAULT_STAGE_CLASSES = {"greylist": 4, "greylisting": 4, "relay": 5, "lockdown": 5}


@check("reply-codes")
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


@check("full-logging")
def full_logging(ev: Evidence, params: FullLoggingParams):
    """Every SMTP connection leaves replies with client, HELO, envelope, and
    the maillog says what happened in Postfix's format.

    For each server connection (ConnectionOpened with service ``smtp``):
    at least one SmtpReply; every reply names the connection's client
    address; after a 2xx to HELO/EHLO, later replies carry that HELO name;
    after a 2xx to MAIL, later replies of the transaction carry the sender;
    the reply to DATA_END lists at least as many recipients as got a 2xx;
    every MessageAccepted follows a 2xx DATA_END reply on its connection.
    No SmtpReply names a connection that was never opened.  The maillog
    (``maillog``, else :func:`mta.maillog.maillog_lines` of the log) has a
    line for every connection, refusal, accepted message, recipient outcome
    and DSN (:mod:`sim.evidence.checks.maillog`).
    Params (:class:`FullLoggingParams`): ``hosts``, ``maillog``.
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
    if params.maillog is not None:
        try:
            lines = Path(params.maillog).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ParamError(f"maillog: cannot read {params.maillog}: {exc.strerror}") from None
    else:
        lines = list(maillog_lines(ev.events, SIM_EPOCH))
    gaps, facts = judge_maillog(ev, lines, want)
    cxs += gaps
    return verdict(gid, cxs, ok=f"{len(opened)} connections fully logged; {facts} facts "
                                f"found in the maillog's {len(lines)} lines",
                   bad="{n} logging gaps",
                   judged=len(opened) + facts, unit="connections and maillog facts")
