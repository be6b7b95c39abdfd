"""Relay-control and limit checks (seeds 000, 003): open relay, ISP
outbound, AUTH, recipient and size limits, smart host."""
from __future__ import annotations

from mta import events as E
from sim.evidence.checks.base import check, cx, enhanced_code, ip_matches, undecidable, verdict
from sim.evidence.checks.helpers import authenticated_before, served, size_param, smtp_address
from sim.evidence.checks.params.relay import (IspOutboundParams, MaxRecipientsParams,
                                              MaxSizeParams, NoOpenRelayParams, RelayParams,
                                              SmartHostParams)
from sim.evidence.model import Evidence


def _relay_attempts(ev: Evidence, host: str, domains: list[str], networks: list[str],
                    skip_auth: bool = True):
    """RCPT replies on ``host`` for unserved addresses from untrusted clients.

    Yields (reply, replies of its connection, authenticated?)."""
    for conn, rs in ev.replies_by_conn(host).items():
        for i, r in enumerate(rs):
            if r.command.upper() != "RCPT":
                continue
            addr = smtp_address(r.argument)
            if served(addr, domains) or ip_matches(r.client_ip, networks):
                continue
            auth = authenticated_before(rs, i)
            if auth and skip_auth:
                continue
            yield r, rs, auth


@check("no-open-relay")
def no_open_relay(ev: Evidence, params: NoOpenRelayParams):
    """No role relays for a domain it does not serve to an untrusted,
    unauthenticated client.

    Params (:class:`NoOpenRelayParams`): ``roles`` {host: {"domains": [...],
    "networks": [...]}}, or ``hosts`` + ``domains`` + ``networks`` for all.  A RCPT is a relay
    attempt when its address is not a plain address at a served domain (the
    nmap forms with ``%``, ``!``, quotes, source routes, ``@[ip]`` always
    are) and the client is neither in ``networks`` nor authenticated.  Any
    2xx to such a RCPT fails, as does a MessageAccepted with such a
    recipient.
    """
    gid = "no-open-relay"
    roles = params.by_host()
    cxs, n = [], 0
    for host, role in roles.items():
        for r, rs, _ in _relay_attempts(ev, host, role.domains, role.networks):
            n += 1
            if 200 <= r.code < 300:
                cxs.append(cx(f"{host} accepted relay recipient {smtp_address(r.argument)!r} "
                              f"from {r.client_ip}", rcpt=smtp_address(r.argument), hosts=[host],
                              times=[r.t], events=[r]))
        by_conn = ev.replies_by_conn(host)
        for e in ev.of(E.MessageAccepted):
            if e.host == host and not ip_matches(e.client_ip, role.networks):
                rs = by_conn.get(e.conn, [])
                if authenticated_before(rs, len(rs)):
                    continue
                for rc in e.rcpts:
                    if not served(rc, role.domains):
                        cxs.append(cx(f"{host} took a message for {rc!r} from untrusted "
                                      f"{e.client_ip}", msg=e.msg, trace=e.trace, rcpt=rc,
                                      hosts=[host], times=[e.t], events=[e]))
    if n == 0:
        return undecidable(gid, f"no relay attempt (RCPT to an unserved address) reached "
                                f"{sorted(roles)}")
    return verdict(gid, cxs, ok=f"{n} relay attempts refused by {sorted(roles)}",
                   bad="{n} relay attempts accepted",
                   judged=n, unit="relay attempts")


#: Replies to MAIL that come before any policy (syntax, command order), so
#: they say nothing about AUTH.
_BEFORE_POLICY = (500, 501, 503, 555)


@check("auth-required")
def auth_required(ev: Evidence, params: RelayParams):
    """Relaying needs SMTP AUTH: 530 5.7.0 without it (RFC 4954 §6); AUTH
    inside a mail transaction gets 503 (RFC 4954 §4).

    Params (:class:`RelayParams`): ``relay``, ``domains``.  Judged on
    SmtpReply.  A relay with no ``domains`` is AUTH-only: every MAIL before
    AUTH (other than a syntax or sequence error) must get ``530 5.7.0``, as
    RFC 4954 §6 says for "any command ... when server policy requires
    authentication".  A relay that serves ``domains`` cannot refuse MAIL, so
    there every unauthenticated RCPT to an unserved address must get
    ``530 5.7.0``.  No message accepted on an unauthenticated connection may
    name an unserved recipient.
    """
    gid = "auth-required"
    relay, domains = params.relay, params.domains
    auth_only = not domains
    cxs, n = [], 0
    by_conn = ev.replies_by_conn(relay)
    for conn, rs in by_conn.items():
        if not rs or (rs[0].command.upper() == "CONNECT" and rs[0].code >= 400):
            continue                    # refused at the greeting: no dialogue to judge
        in_tx = False
        for i, r in enumerate(rs):
            cmd, authed = r.command.upper(), authenticated_before(rs, i)
            where = dict(hosts=[relay], times=[r.t], events=[r])
            if cmd == "MAIL":
                if auth_only and not authed and r.code not in _BEFORE_POLICY:
                    n += 1
                    if r.code != 530 or enhanced_code(r.text) != "5.7.0":
                        cxs.append(cx(f"unauthenticated MAIL answered {r.code} "
                                      f"{enhanced_code(r.text)}, not 530 5.7.0", **where))
                in_tx = 200 <= r.code < 300
            elif cmd in ("RSET", "DATA_END", "EHLO", "HELO"):
                in_tx = False
            elif cmd == "AUTH" and in_tx:
                n += 1
                if r.code != 503:
                    cxs.append(cx(f"AUTH inside a mail transaction answered {r.code}, not 503",
                                  **where))
            elif cmd == "RCPT" and not auth_only and not authed \
                    and not served(smtp_address(r.argument), domains):
                n += 1
                if r.code != 530 or enhanced_code(r.text) != "5.7.0":
                    cxs.append(cx(f"unauthenticated relay RCPT answered {r.code} "
                                  f"{enhanced_code(r.text)}, not 530 5.7.0",
                                  rcpt=smtp_address(r.argument), **where))
    for e in ev.of(E.MessageAccepted):
        rs = by_conn.get(e.conn, []) if e.host == relay else None
        if rs is None or authenticated_before(rs, len(rs)):
            continue
        for rc in e.rcpts:
            if not served(rc, domains):
                cxs.append(cx(f"relayed for {rc!r} without AUTH", msg=e.msg, trace=e.trace,
                              rcpt=rc, hosts=[relay], times=[e.t], events=[e]))
    what = "MAIL" if auth_only else "relay RCPT"
    if n == 0:
        return undecidable(gid, f"no unauthenticated {what} and no AUTH inside a "
                                f"transaction at {relay}")
    return verdict(gid, cxs, ok=f"{n} unauthenticated {what}s or AUTHs inside a transaction "
                                f"answered as required",
                   bad="{n} AUTH violations",
                   judged=n, unit="unauthenticated attempts")


@check("max-recipients-30")
def max_recipients(ev: Evidence, params: MaxRecipientsParams):
    """No message is relayed to more than ``limit`` recipients.

    Params (:class:`MaxRecipientsParams`): ``relay``, ``limit``, ``mode``.
    In conformant mode each RCPT past the limit gets 452 4.5.3 and none
    within it is refused as too many (4.5.3).  Undecidable if no
    transaction sent more RCPTs than the limit.
    """
    gid = "max-recipients-30"
    relay, limit, mode = params.relay, params.limit, params.mode
    cxs, over = [], 0
    for conn, rs in ev.replies_by_conn(relay).items():
        count, seen = 0, 0
        for r in rs:
            cmd = r.command.upper()
            if cmd in ("MAIL", "RSET", "DATA_END"):
                count, seen = 0, 0
            if cmd != "RCPT":
                continue
            seen += 1
            if seen == limit + 1:
                over += 1
            if 200 <= r.code < 300:
                count += 1
            if count > limit and 200 <= r.code < 300 and mode == "conformant":
                cxs.append(cx(f"recipient {count} accepted beyond the limit {limit}",
                              rcpt=smtp_address(r.argument), hosts=[relay], times=[r.t],
                              events=[r]))
            if seen > limit and mode == "conformant" and r.code >= 400 and \
                    (r.code != 452 or enhanced_code(r.text) != "4.5.3"):
                cxs.append(cx(f"recipient beyond the limit answered {r.code} "
                              f"{enhanced_code(r.text)}, expected 452 4.5.3",
                              hosts=[relay], times=[r.t], events=[r]))
            # "Too many recipients" within the limit: the relay enforces less than it promises.
            if seen <= limit and mode == "conformant" and enhanced_code(r.text) == "4.5.3":
                cxs.append(cx(f"recipient {seen} refused as too many ({r.code} 4.5.3), within "
                              f"the limit {limit}", rcpt=smtp_address(r.argument),
                              hosts=[relay], times=[r.t], events=[r]))
    queued: dict[str, set] = {}
    relayed: dict[str, set] = {}
    for e in ev.in_order(E.Queued, E.Relayed, E.DeliveredToMailbox):
        if e.host != relay:
            continue
        if isinstance(e, E.Queued):
            queued.setdefault(e.msg, set()).add(e.rcpt)
        elif isinstance(e, (E.Relayed, E.DeliveredToMailbox)):
            relayed.setdefault(e.msg, set()).add(e.rcpt)
    for table, what in ((queued, "queued"), (relayed, "relayed")):
        for msg, rc in sorted(table.items()):
            if len(rc) > limit:
                cxs.append(cx(f"message {what} for {len(rc)} recipients (limit {limit})",
                              msg=msg, hosts=[relay]))
    if over == 0:
        return undecidable(gid, f"no transaction at {relay} sent more than {limit} recipients")
    return verdict(gid, cxs, ok=f"{over} transactions over the limit; no message relayed to "
                                f"more than {limit} recipients", bad="{n} limit violations",
                   judged=over, unit="transactions over the limit")


@check("max-size-30mb")
def max_size(ev: Evidence, params: MaxSizeParams):
    """Messages over the limit get 552, by SIZE= or in DATA; SIZE advertised.

    Params (:class:`MaxSizeParams`): ``relay``, ``limit``.  Every 2xx EHLO
    reply mentions SIZE; a MAIL declaring SIZE above the limit gets 552; no
    MessageAccepted is bigger than the limit.
    Undecidable when no oversized message was tried.
    """
    gid = "max-size-30mb"
    relay, limit = params.relay, params.limit
    cxs, tried = [], 0
    for e in ev.in_order(E.SmtpReply, E.MessageAccepted):
        if isinstance(e, E.SmtpReply) and e.host == relay:
            cmd = e.command.upper()
            if cmd == "EHLO" and 200 <= e.code < 300 and "SIZE" not in e.text.upper():
                cxs.append(cx("EHLO reply does not advertise SIZE", hosts=[relay],
                              times=[e.t], events=[e]))
            if cmd == "MAIL":
                n = size_param(e.argument)
                if n is not None and n > limit:
                    tried += 1
                    if e.code != 552:
                        cxs.append(cx(f"MAIL with SIZE={n} answered {e.code}, not 552",
                                      hosts=[relay], times=[e.t], events=[e]))
            if cmd == "DATA_END" and e.code == 552:
                tried += 1
        elif isinstance(e, E.MessageAccepted) and e.host == relay and e.size > limit:
            tried += 1
            cxs.append(cx(f"accepted a message of {e.size} bytes over the limit {limit}",
                          msg=e.msg, trace=e.trace, hosts=[relay], times=[e.t], events=[e]))
    if tried == 0:
        return undecidable(gid, f"no message over {limit} bytes was sent to {relay}")
    return verdict(gid, cxs, ok=f"{tried} oversized messages refused with 552",
                   bad="{n} size-limit violations",
                   judged=tried, unit="oversized messages")


@check("no-relay-via-isp-outbound")
def no_relay_via_isp_outbound(ev: Evidence, params: IspOutboundParams):
    """The ISP's outbound server refuses a customer server; the customer
    server delivers straight to the recipients' MX hosts.

    Params (:class:`IspOutboundParams`): ``isp``, ``customer_ips``,
    ``customer``, ``domains``.
    """
    gid = "no-relay-via-isp-outbound"
    isp, ips, domains, customer = params.isp, params.customer_ips, params.domains, params.customer
    cxs, n = [], 0
    for conn, rs in ev.replies_by_conn(isp).items():
        for r in rs:
            if r.command.upper() == "RCPT" and ip_matches(r.client_ip, ips) \
                    and not served(smtp_address(r.argument), domains):
                n += 1
                if r.code < 500:
                    cxs.append(cx(f"ISP outbound answered {r.code} to a customer server's "
                                  f"relay RCPT", hosts=[isp], times=[r.t], events=[r]))
    if customer:
        for e in ev.of(E.AttemptStarted):
            if e.host == customer:
                n += 1
                if e.dest_host == isp:
                    cxs.append(cx("customer server routed mail through the ISP outbound",
                                  msg=e.msg, trace=e.trace, hosts=[customer, isp],
                                  times=[e.t], events=[e]))
                elif e.preference is None:
                    cxs.append(cx("customer server delivered without an MX lookup",
                                  msg=e.msg, trace=e.trace, hosts=[customer], times=[e.t],
                                  events=[e]))
    if n == 0:
        return undecidable(gid, f"no relay attempt from {ips} at {isp} and no delivery by "
                                f"the customer server")
    return verdict(gid, cxs, ok=f"{n} relay refusals / direct deliveries as required",
                   bad="{n} violations",
                   judged=n, unit="relay refusals or direct deliveries")


@check("smart-host")
def smart_host(ev: Evidence, params: SmartHostParams):
    """A customer mailer hands everything to the smart host, which delivers
    by MX lookup and refuses HELO names that are not fully qualified.

    Params (:class:`SmartHostParams`): ``smart_host``, ``customer``.
    """
    gid = "smart-host"
    sh, cust = params.smart_host, params.customer
    cxs, n = [], 0
    traces = set()
    for e in ev.of(E.AttemptStarted):
        if e.host == cust:
            n += 1
            traces.add(e.trace)
            if e.dest_host != sh:
                cxs.append(cx(f"customer mailer delivered to {e.dest_host}, not the smart host",
                              msg=e.msg, trace=e.trace, hosts=[cust, e.dest_host],
                              times=[e.t], events=[e]))
    if n == 0:
        return undecidable(gid, f"the customer mailer {cust} made no delivery attempt")
    for e in ev.of(E.AttemptStarted):
        if e.host == sh and e.trace in traces and e.preference is None:
            cxs.append(cx("smart host delivered without an MX lookup", msg=e.msg, trace=e.trace,
                          hosts=[sh, e.dest_host], times=[e.t], events=[e]))
    accepted = {e.conn for e in ev.of(E.MessageAccepted) if e.host == sh}
    for conn, rs in ev.replies_by_conn(sh).items():
        for r in rs:
            if r.command.upper() in ("HELO", "EHLO"):
                name = r.argument.strip()
                fq = "." in name.strip(".") or name.startswith("[")
                if not fq and (200 <= r.code < 300 and conn in accepted):
                    cxs.append(cx(f"accepted mail after HELO {name!r}, not fully qualified",
                                  hosts=[sh], times=[r.t], events=[r]))
    return verdict(gid, cxs, ok=f"{n} customer attempts all through {sh}, delivered by MX",
                   bad="{n} smart-host violations",
                   judged=n, unit="customer attempts")
