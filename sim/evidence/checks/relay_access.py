"""Restricted-relay checks (seeds 002 and 003): default deny,
POP-before-SMTP, sender affiliation, the 2525 fallback, blocked
attachments, port-25 interception.

Each check rebuilds what it judges from the log on its own, never from the
component's state: the grant table from ``pop3_login`` events, the owner
of a session from ``pop3_login`` and the ``smtp-auth`` pass decisions, the
truth about an intercepted connection from which host logged it, whether a
file name is blocked from its own reading of the name.  Each is undecidable
when the run never exercised the situation it is about.
"""
from __future__ import annotations

import re

from mta import events as E
from sim.evidence.checks.base import check, cx, enhanced_code, ip_matches, undecidable, verdict
from sim.evidence.checks.helpers import authenticated_before, served, smtp_address
from sim.evidence.checks.params.relay_access import (AltPortParams,
                                                     BlockedAttachmentsParams, DefaultDenyParams,
                                                     InterceptionParams, PopBeforeSmtpParams,
                                                     SenderAffiliatedParams)
from sim.evidence.model import Evidence


def _logins(ev: Evidence, relay: str) -> dict[str, list[tuple[float, str]]]:
    """client address -> [(login time, user)] on ``relay``, in time order."""
    out: dict[str, list[tuple[float, str]]] = {}
    for e in ev.of(E.Pop3Login):
        if e.host == relay:
            out.setdefault(e.client_ip, []).append((float(e.t), e.user))
    return out


def _grant(logins: dict[str, list[tuple[float, str]]], ip: str, t: float,
           window: float) -> str | None:
    """The user whose latest login at or before ``t`` still covers ``t``."""
    last = None
    for lt, user in logins.get(ip, []):
        if lt <= t:
            last = (lt, user)
    return last[1] if last is not None and t < last[0] + window else None


@check("pop-before-smtp")
def pop_before_smtp(ev: Evidence, params: PopBeforeSmtpParams):
    """A POP3 login opens relaying from its address for ``window``; nobody
    else relays.

    Per connection to the relay (not authenticated, not from ``networks``):
    with a grant open at its greeting (or at the MAIL before a RCPT), a
    refusing greeting or a ``Relay access denied`` RCPT fails; without one,
    a 2xx to a RCPT for an unserved address fails.  Undecidable unless the
    log has both a session inside a grant and one outside every grant.
    """
    gid = "pop-before-smtp"
    relay, window = params.relay, params.window
    logins = _logins(ev, relay)
    if not logins:
        return undecidable(gid, f"no POP3 login on {relay}")
    cxs, inside, outside = [], 0, 0
    for conn, rs in ev.replies_by_conn(relay).items():
        if not rs or ip_matches(rs[0].client_ip, params.networks) \
                or authenticated_before(rs, len(rs)):
            continue                            # trusted, or SMTP AUTH: not this rule's
        ip = rs[0].client_ip
        user = _grant(logins, ip, rs[0].t, window)
        if user is not None:
            inside += 1
        else:
            outside += 1
        for i, r in enumerate(rs):
            cmd = r.command.upper()
            if cmd == "CONNECT" and user is not None and r.code >= 400:
                cxs.append(cx(f"greeting {r.code} to {ip}, whose login as {user} holds",
                              hosts=[relay], times=[r.t], events=[r]))
            if cmd == "MAIL" and user is None:
                user = _grant(logins, ip, r.t, window)
            if cmd != "RCPT" or authenticated_before(rs, i):
                continue
            addr = smtp_address(r.argument)
            if served(addr, params.domains):
                continue
            if user is None and 200 <= r.code < 300:
                cxs.append(cx(f"relayed for {ip} with no POP3 login in the last "
                              f"{window:g} s", rcpt=addr, hosts=[relay], times=[r.t], events=[r]))
            if user is not None and r.code >= 500 and "relay access denied" in r.text.lower():
                cxs.append(cx(f"relay refused to {ip}, whose login as {user} holds",
                              rcpt=addr, hosts=[relay], times=[r.t], events=[r]))
    if inside == 0 or outside == 0:
        return undecidable(gid, f"{inside} sessions inside a grant and {outside} outside: "
                                f"both are needed to judge {relay}")
    return verdict(gid, cxs, ok=f"{inside} sessions inside a grant relayed, {outside} outside "
                                f"refused", bad="{n} POP-before-SMTP violations",
                   judged=inside + outside, unit="sessions")


def _auth_users(ev: Evidence, relay: str) -> dict[str, str]:
    """connection -> the user its AUTH named (the smtp-auth pass decisions)."""
    out: dict[str, str] = {}
    for e in ev.of(E.PolicyDecision):
        if e.host == relay and e.stage == "smtp-auth" and e.decision == "pass":
            m = re.search(r"\buser=(\S+)", e.detail)
            if m:
                out[e.conn] = m.group(1)
    return out


@check("sender-affiliated")
def sender_affiliated(ev: Evidence, params: SenderAffiliatedParams):
    """MAIL FROM must be in the domains of the session's user, else 553 5.7.1.

    The user is the one AUTH named on the connection, or else the POP3
    account whose login covers the connection.  Each MAIL of such a session
    (not ``<>``) is judged: an owned domain must not be refused by the
    sender rule, any other must get 553 with 5.7.1.  Undecidable unless a
    MAIL from a domain the user does not own was tried.
    """
    gid = "sender-affiliated"
    relay = params.relay
    owners = {u: [d.lower() for d in ds] for u, ds in params.owners.items()}
    logins, auth = _logins(ev, relay), _auth_users(ev, relay)
    cxs, good, bad = [], 0, 0
    for conn, rs in ev.replies_by_conn(relay).items():
        for i, r in enumerate(rs):
            if r.command.upper() != "MAIL":
                continue
            user = auth.get(conn) if authenticated_before(rs, i) else \
                _grant(logins, r.client_ip, r.t, params.window)
            sender = smtp_address(r.argument)
            if user is None or not sender:
                continue
            domain = sender.rpartition("@")[2].lower()
            if domain in owners.get(user, []):
                good += 1
                if r.code == 553:
                    cxs.append(cx(f"{user}'s own {sender} refused", hosts=[relay],
                                  times=[r.t], events=[r]))
            else:
                bad += 1
                if r.code != 553 or enhanced_code(r.text) != "5.7.1":
                    cxs.append(cx(f"{sender} (not owned by {user}) answered {r.code} "
                                  f"{enhanced_code(r.text)}, expected 553 5.7.1",
                                  hosts=[relay], times=[r.t], events=[r]))
    if bad == 0:
        return undecidable(gid, f"no user sent from a domain it does not own at {relay} "
                                f"({good} affiliated senders seen)")
    return verdict(gid, cxs, ok=f"{bad} non-affiliated senders refused with 553 5.7.1, "
                                f"{good} affiliated accepted", bad="{n} sender violations",
                   judged=bad + good, unit="senders")


@check("alt-port-2525")
def alt_port(ev: Evidence, params: AltPortParams):
    """A client whose port 25 times out reaches the relay on 2525 and sends.

    Judged on the clients' ``client_submission`` events and the relay's own
    log: after each timeout on ``blocked_port``, the same client's next
    attempt is on ``alt_port`` and sends, and the relay logged a message
    accepted on a connection to ``alt_port`` at that moment.  Undecidable
    unless some port-25 attempt timed out.
    """
    gid = "alt-port-2525"
    relay = params.relay
    subs = [e for e in ev.of(E.ClientSubmission) if e.dest_host == relay and e.service == "smtp"
            and (not params.clients or e.host in params.clients)]
    alt_conns = {e.conn: e for e in ev.of(E.ConnectionOpened)
                 if e.host == relay and e.port == params.alt_port}
    accepted = [e for e in ev.of(E.MessageAccepted) if e.host == relay and e.conn in alt_conns]
    cxs, n = [], 0
    for i, e in enumerate(subs):
        if e.port != params.blocked_port or e.outcome != "timeout":
            continue
        n += 1
        nxt = next((s for s in subs[i + 1:] if s.actor == e.actor), None)
        if nxt is None or nxt.port != params.alt_port:
            cxs.append(cx(f"{e.actor} timed out on {e.port} and did not try {params.alt_port}",
                          hosts=[e.host, relay], times=[e.t], events=[e], cause="no-fallback"))
        elif nxt.outcome != "sent":
            cxs.append(cx(f"{e.actor} on {params.alt_port}: {nxt.outcome} {nxt.code}",
                          hosts=[e.host, relay], times=[nxt.t], events=[e, nxt],
                          cause="fallback-failed"))
        elif not any(e.t <= a.t <= nxt.t for a in accepted):
            cxs.append(cx(f"{e.actor} says sent on {params.alt_port}, but {relay} accepted "
                          f"nothing on that port then", hosts=[e.host, relay], times=[nxt.t],
                          events=[e, nxt], cause="not-accepted-on-alt-port"))
    if n == 0:
        return undecidable(gid, f"no client of {relay} timed out on port {params.blocked_port}")
    return verdict(gid, cxs, ok=f"{n} port-{params.blocked_port} timeouts, each followed by a "
                                f"message accepted on {params.alt_port}",
                   bad="{n} fallback failures",
                   judged=n, unit="port timeouts")


def _blocked(name: str, extensions: list[str]) -> str | None:
    """The extension ``name`` resolves to if refused: the last path
    component, trailing dots and spaces dropped, any case, last extension."""
    base = re.split(r"[\\/]", name)[-1].rstrip(". ").lower()
    stem, dot, ext = base.rpartition(".")
    wanted = {"." + x.lower().lstrip(".") for x in extensions}
    return "." + ext if dot and ("." + ext) in wanted else None


@check("blocked-attachments")
def blocked_attachments(ev: Evidence, params: BlockedAttachmentsParams):
    """A message with a blocked attachment is refused at end of DATA with
    550 5.7.1 naming the file; others are not refused for an attachment.

    Judged on what the clients sent (``client_submission`` with
    ``attachments``) and on the relay's end-of-DATA replies: every
    refusal by the attachment rule must name a file with a blocked
    extension, and no message of that transaction may be accepted anyway.
    Undecidable unless a blocked attachment was sent.
    """
    gid = "blocked-attachments"
    relay, exts = params.relay, params.extensions
    cxs, n, ok = [], 0, 0
    for e in ev.of(E.ClientSubmission):
        if e.dest_host != relay or e.service != "smtp" or not e.attachments:
            continue
        hits = [a for a in e.attachments if _blocked(a, exts)]
        refused_for_it = e.code == 550 and "attachment" in e.detail.lower()
        if hits:
            if e.outcome in ("timeout", "refused", "reset"):
                continue                        # never reached DATA
            n += 1
            if e.outcome == "sent" or not refused_for_it or \
                    not any(f'"{a}"' in e.detail for a in hits) or \
                    enhanced_code(e.detail.partition(": ")[2]) != "5.7.1":
                cxs.append(cx(f"{hits[0]!r} answered {e.outcome} {e.code}, expected 550 5.7.1 "
                              f"naming it", hosts=[e.host, relay], times=[e.t], events=[e]))
        else:
            ok += 1
            if refused_for_it:
                cxs.append(cx(f"{list(e.attachments)} refused though none is blocked",
                              hosts=[e.host, relay], times=[e.t], events=[e]))
    taken: dict[str, list[E.MessageAccepted]] = {}
    for e in ev.of(E.MessageAccepted):
        if e.host == relay:
            taken.setdefault(e.conn, []).append(e)
    for conn, rs in ev.replies_by_conn(relay).items():
        for i, r in enumerate(rs):
            if r.command.upper() == "DATA_END" and r.stage == "attachments" and r.code >= 500:
                m = re.search(r'Attachment "(.*)" refused', r.text)
                if m is None or _blocked(m.group(1), exts) is None:
                    cxs.append(cx(f"end of DATA refused for an attachment not on the list: "
                                  f"{r.text!r}", hosts=[relay], times=[r.t], events=[r]))
                # A refusal is only one if the message was not queued anyway.
                start = max((x.t for x in rs[:i] if x.command.upper() == "MAIL"), default=r.t)
                stop = min((x.t for x in rs[i + 1:] if x.command.upper() == "MAIL"),
                           default=float("inf"))
                for a in taken.get(conn, []):
                    if start <= a.t < stop:
                        cxs.append(cx("end of DATA refused for an attachment, but the message "
                                      "was accepted all the same", msg=a.msg, trace=a.trace,
                                      hosts=[relay], times=[r.t, a.t], events=[r, a]))
    if n == 0:
        return undecidable(gid, f"no blocked attachment was sent to {relay}")
    return verdict(gid, cxs, ok=f"{n} blocked attachments refused with 550 5.7.1, {ok} others "
                                f"not refused for an attachment", bad="{n} attachment violations",
                   judged=n, unit="blocked attachments")


@check("port25-interception")
def port25_interception(ev: Evidence, params: InterceptionParams):
    """The client notices when its port-25 connection reached another server.

    The truth is in the servers' logs: a connection of the client to the
    relay's ``port`` was intercepted when the relay logged no connection
    from ``client_ip`` then, and another host did.  Each such connection
    must have a ``client_submission`` ``intercepted`` from the client, and
    no connection that did reach the relay may have one.  Undecidable
    unless some connection was intercepted.
    """
    gid = "port25-interception"
    client, relay, port = params.client, params.relay, params.port
    opened = [e for e in ev.of(E.ConnectionOpened)
              if e.client_ip == params.client_ip and e.port == port and e.service == "smtp"]
    noticed = [e for e in ev.of(E.ClientSubmission) if e.host == client
               and e.outcome == "intercepted" and e.port == port]
    cxs, n, real = [], 0, 0
    for a in ev.of(E.ConnectAttempt):
        if a.host != client or a.dest_host != relay or a.port != port \
                or a.outcome != "connected":
            continue
        here = [o for o in opened if a.t - 5.0 <= o.t <= a.t]
        said = [s for s in noticed if a.t <= s.t <= a.t + 1.0]
        if not here:
            continue                            # nobody logged it: cannot tell
        if any(o.host == relay for o in here):
            real += 1
            if said:
                cxs.append(cx("the client reported interception on a connection the relay "
                              "logged", hosts=[client, relay], times=[a.t], events=[a, *said]))
            continue
        n += 1
        if not said:
            cxs.append(cx(f"connection reached {here[0].host}, not {relay}, and the client "
                          f"did not notice (banner {a.greeting!r})",
                          hosts=[client, relay, here[0].host], times=[a.t],
                          events=[a, here[0]]))
    if n == 0:
        return undecidable(gid, f"no connection of {client} to {relay}:{port} was intercepted "
                                f"({real} reached it)")
    return verdict(gid, cxs, ok=f"{n} intercepted connections noticed from the banner, "
                                f"{real} real ones not flagged", bad="{n} interception misses",
                   judged=n, unit="intercepted connections")


@check("relay-default-deny")
def relay_default_deny(ev: Evidence, params: DefaultDenyParams):
    """The relay refuses to relay for every client that has not opened it.

    Params (:class:`DefaultDenyParams`): ``relay``, ``domains``, ``window``,
    ``networks``.  A connection is closed to relaying unless it comes from
    ``networks``, authenticated (a 2xx to AUTH), or comes from an address
    whose POP3 login (``pop3_login``) is less than ``window`` old.  Every
    closed connection that was refused at the greeting, or sent a RCPT for
    an unserved address, is judged: a 2xx greeting followed by a 2xx RCPT
    for an unserved address, a 4xx where a refusal was due, or a message
    accepted for such a recipient fails.
    """
    gid = "relay-default-deny"
    relay, domains = params.relay, params.domains
    logins = _logins(ev, relay)
    accepted = {e.conn: e for e in ev.of(E.MessageAccepted) if e.host == relay}
    cxs, at_greeting, at_rcpt = [], 0, 0
    for conn, rs in ev.replies_by_conn(relay).items():
        if not rs or ip_matches(rs[0].client_ip, params.networks):
            continue
        ip = rs[0].client_ip
        if rs[0].command.upper() == "CONNECT" and rs[0].code >= 500 \
                and _grant(logins, ip, rs[0].t, params.window) is None:
            at_greeting += 1
            continue
        for i, r in enumerate(rs):
            if r.command.upper() != "RCPT" or authenticated_before(rs, i):
                continue
            addr = smtp_address(r.argument)
            if served(addr, domains) or _grant(logins, ip, r.t, params.window) is not None:
                continue
            at_rcpt += 1
            if r.code < 500:
                cxs.append(cx(f"relay RCPT from {ip}, which opened no grant, answered "
                              f"{r.code}, expected a 5xx refusal", rcpt=addr, hosts=[relay],
                              times=[r.t], events=[r]))
        m = accepted.get(conn)
        if m is not None and not authenticated_before(rs, len(rs)) \
                and _grant(logins, ip, m.t, params.window) is None:
            for rc in m.rcpts:
                if not served(rc, domains):
                    cxs.append(cx(f"relayed for {rc!r} from {ip}, which opened no grant",
                                  msg=m.msg, trace=m.trace, rcpt=rc, hosts=[relay],
                                  times=[m.t], events=[m]))
    n = at_greeting + at_rcpt
    if n == 0:
        return undecidable(gid, f"no client without AUTH or POP3 grant tried to relay "
                                f"through {relay}")
    return verdict(gid, cxs, ok=f"{at_greeting} connections refused at the greeting, "
                                f"{at_rcpt} relay recipients refused",
                   bad="{n} relayed without AUTH or grant",
                   judged=n, unit="connections and recipients without a grant")
