"""Checks of the hosted-domain service (seed 000): MX fallback, senders
giving up, the dial-up primary warning, the queueing server, filters on
every MX."""
from __future__ import annotations

from mta import events as E
from sim.evidence.checks.base import (
    check, cx, ip_matches, p_dur, p_list, p_str, undecidable, verdict, within)
from sim.evidence.checks.core import _is_give_up, _rounds
from sim.evidence.checks.helpers import attempts_of, held_copies, node_domain
from sim.evidence.projections import (
    BOUNCED, DELIVERED, QUEUED, RELAYED, RELAYED_OUT, down_periods, in_domain, lifecycles,
    run_bounds)


@check("mx-fallback")
def mx_fallback(events: list[E.Event], params: dict):
    """While the primary is unreachable the secondary takes the mail and
    delivers it to the primary once it is back.

    Params: ``primary``, ``secondary`` (host names); ``grace`` (duration,
    default 1h): a copy still queued on the secondary at the end of the run
    is a failure only if the primary had been up for longer than this.

    Needs LinkDown/LinkUp of the primary.  Fails if senders attempted the
    primary while it was down and no mail reached the secondary then; every
    copy the secondary accepted must be relayed to the primary (and accepted
    there) at a time the primary's link was up.
    """
    gid = "mx-fallback"
    primary, secondary = p_str(params, "primary"), p_str(params, "secondary")
    grace = p_dur(params, "grace", 3600)
    downs = down_periods(events, primary)
    if not downs:
        return undecidable(gid, f"no LinkDown of the primary {primary} in the log")
    tried = [e for e in events if isinstance(e, E.AttemptStarted) and e.dest_host == primary
             and e.host != secondary and within(e.t, downs)]
    got = [e for e in events if isinstance(e, E.MessageAccepted) and e.host == secondary
           and within(e.t, downs)]
    if not tried and not got:
        return undecidable(gid, f"no delivery was attempted while {primary} was down")
    cxs = []
    if not got:
        cxs.append(cx(f"senders tried {primary} while it was down but {secondary} accepted "
                      f"nothing then", hosts=[primary, secondary],
                      times=[a for a, _ in downs], events=tried[:5]))
    _, end = run_bounds(events)
    up_since = max([b for a, b in downs if b < end] + [float("-inf")])
    primary_down_at_end = any(a <= end <= b for a, b in downs)
    n = 0
    for lf in lifecycles(events):
        if lf.host != secondary:
            continue
        n += 1
        where = dict(msg=lf.msg, trace=lf.trace, rcpt=lf.rcpt, hosts=[secondary, primary],
                     events=lf.events)
        if lf.fate == RELAYED and lf.next_hop == primary:
            if within(lf.fate_t, downs):
                cxs.append(cx("relayed to the primary while its link was down",
                              times=[lf.fate_t], **where))
        elif lf.fate == QUEUED:
            if not primary_down_at_end and end - up_since > grace:
                cxs.append(cx(f"still queued on {secondary} {end - up_since:g} s after "
                              f"{primary} came back", times=[lf.accepted_t, end], **where))
        else:
            cxs.append(cx(f"ended {lf.fate} (next hop {lf.next_hop or '-'}), not delivered "
                          f"to {primary}", times=[lf.accepted_t], **where))
    return verdict(gid, cxs, ok=f"{len(got)} messages taken by {secondary} during {len(downs)} "
                                f"outages of {primary}; {n} copies delivered on or held",
                   bad="{n} fallback failures")


@check("sender-gives-up")
def sender_gives_up(events: list[E.Event], params: dict):
    """A sender that reaches no MX keeps retrying, then bounces: never silent.

    Params: ``senders`` (list of hosts; default every host that submitted
    mail without SMTP, DSNs aside); ``min_retry_span`` (duration, default 1h): a give-up
    must come at least this long after queueing, after at least two rounds.

    Judged on copies on those hosts that were never relayed or delivered:
    each must end bounced with a DSN, or still be queued.
    """
    gid = "sender-gives-up"
    lives = lifecycles(events)
    senders = set(p_list(params, "senders")) if "senders" in params else \
        {lf.host for lf in lives if lf.origin not in ("smtp", "dsn")}
    span = p_dur(params, "min_retry_span", 3600)
    # DSNs a sender generated are not the sender's own mail to give up on.
    stuck = [lf for lf in lives if lf.host in senders and lf.origin != "dsn"
             and lf.fate not in (RELAYED, RELAYED_OUT, DELIVERED)]
    if not stuck:
        return undecidable(gid, "no sender copy failed to reach an MX: the run does not "
                                "exercise giving up")
    cxs = []
    for lf in stuck:
        where = dict(msg=lf.msg, trace=lf.trace, rcpt=lf.rcpt, hosts=[lf.host], events=lf.events)
        if lf.fate == QUEUED:
            continue
        if lf.fate != BOUNCED:
            cxs.append(cx(f"undeliverable copy ended {lf.fate}: {lf.detail}",
                          times=[lf.accepted_t], **where))
            continue
        rounds = _rounds(lf)
        t0 = lf.queued_t if lf.queued_t is not None else lf.accepted_t
        if isinstance(lf.fate_event, E.Bounced) and _is_give_up(lf.fate_event) and \
                (len(rounds) < 2 or lf.fate_t - t0 < span):
            cxs.append(cx(f"gave up after {lf.fate_t - t0:g} s and {len(rounds)} rounds "
                          f"(expected at least {span:g} s and 2 rounds)",
                          times=[t0, lf.fate_t], **where))
    nb = sum(1 for lf in stuck if lf.fate == BOUNCED)
    return verdict(gid, cxs, ok=f"{len(stuck)} undeliverable copies: {nb} bounced with a DSN "
                                f"after retrying, {len(stuck) - nb} still queued",
                   bad="{n} undeliverable copies not handled visibly")


@check("dialup-primary-loses-mail")
def dialup_primary_loses_mail(events: list[E.Event], params: dict):
    """The guarantee "no mail for the dial-up primary's domain is bounced".

    The documented warning is that it does not hold: scenarios expect it
    ``violated``, and the counterexamples are the bounces, each with the
    give-up time and whether the primary's link was down then.

    Params: ``primary`` (host), ``domain``.  Undecidable without a LinkDown
    of the primary or without mail for the domain.
    """
    gid = "dialup-primary-loses-mail"
    primary, domain = p_str(params, "primary"), p_str(params, "domain")
    downs = down_periods(events, primary)
    if not downs:
        return undecidable(gid, f"no LinkDown of the primary {primary} in the log")
    lives = [lf for lf in lifecycles(events) if in_domain(lf.rcpt, domain)]
    if not lives:
        return undecidable(gid, f"no mail for {domain} in the log")
    cxs = []
    for lf in lives:
        b = lf.fate_event
        if isinstance(b, E.Bounced):
            down = within(b.t, downs)
            cxs.append(cx(f"bounced by {lf.host} ({b.code} {b.reason}); primary link "
                          f"{'down' if down else 'up'} at give-up",
                          msg=lf.msg, trace=lf.trace, rcpt=lf.rcpt, hosts=[lf.host, primary],
                          times=[lf.accepted_t, b.t], events=lf.events))
    return verdict(gid, cxs, ok=f"{len(lives)} copies for {domain}; none bounced",
                   bad=f"{{n}} recipients at {domain} bounced while the dial-up primary "
                       f"{primary} was unreachable ({len(downs)} outages)")


@check("queueing-server-etrn")
def queueing_server_etrn(events: list[E.Event], params: dict):
    """A queueing server holds the dial-up customer's mail; ETRN releases it.

    Params: ``queue_server``, ``delivery_server`` (hosts), ``domain``,
    ``lifetime`` (duration, default 5d), ``within`` (duration, default 60 s).

    Nothing for the domain bounces, except copies queued during an outage
    of the delivery server longer than ``lifetime``; every 2xx ETRN for the
    domain at the queueing server is followed, within ``within``, by an
    attempt for each copy held for the domain then, and by a new connection
    from the queueing server to the delivery server.
    """
    gid = "queueing-server-etrn"
    qs, ds = p_str(params, "queue_server"), p_str(params, "delivery_server")
    domain = p_str(params, "domain")
    lifetime, win = p_dur(params, "lifetime", "5d"), p_dur(params, "within", 60)
    etrns = [e for e in events if isinstance(e, E.EtrnRequest) and e.host == qs
             and in_domain("x@" + node_domain(e.argument)[0], domain)]
    if not etrns:
        return undecidable(gid, f"no ETRN for {domain} reached {qs}")
    long_downs = [(a, b) for a, b in down_periods(events, ds) if b - a > lifetime]
    cxs = []
    for lf in lifecycles(events):
        if in_domain(lf.rcpt, domain) and isinstance(lf.fate_event, E.Bounced) \
                and not within(lf.accepted_t, long_downs):
            cxs.append(cx("bounced although the dial-up link came up within the lifetime",
                          msg=lf.msg, trace=lf.trace, rcpt=lf.rcpt, hosts=[lf.host],
                          times=[lf.accepted_t, lf.fate_t], events=lf.events))
    tries = attempts_of(events, qs)
    connects = [e for e in events if isinstance(e, E.ConnectAttempt) and e.host == qs
                and e.dest_host == ds]
    for et in etrns:
        if not 200 <= et.code < 300:
            continue
        held = held_copies(events, qs, domain, et.t)
        late = [h for h in held if not any(et.t <= t <= et.t + win for t in tries[(h.msg, h.rcpt)])]
        for h in late:
            cxs.append(cx(f"held at ETRN time, not attempted within {win:g} s", msg=h.msg,
                          trace=h.trace, rcpt=h.rcpt, hosts=[qs, ds], times=[et.t], events=[et]))
        if held and not any(et.t <= c.t <= et.t + win for c in connects):
            cxs.append(cx(f"no new connection from {qs} to {ds} after ETRN", hosts=[qs, ds],
                          times=[et.t], events=[et]))
    return verdict(gid, cxs, ok=f"{len(etrns)} ETRN requests released the held mail; "
                                f"nothing for {domain} bounced",
                   bad="{n} queueing-server failures")


@check("filters-on-every-mx")
def filters_on_every_mx(events: list[E.Event], params: dict):
    """Mail from a blocked IP never reaches a mailbox, whichever MX it hit.

    Params: ``mxs`` (list of MX hosts), ``blocked`` (list of IPs/CIDRs).
    Counterexamples are deliveries of traces whose first SMTP acceptance was
    from a blocked address.  Undecidable if no blocked address connected.
    """
    gid = "filters-on-every-mx"
    mxs, blocked = set(p_list(params, "mxs")), p_list(params, "blocked")
    tried = [e for e in events if isinstance(e, (E.ConnectionOpened, E.SmtpReply))
             and e.host in mxs and ip_matches(e.client_ip, blocked)]
    if not tried:
        return undecidable(gid, f"no connection from a blocked address to {sorted(mxs)}")
    first_from: dict[str, E.MessageAccepted] = {}
    for e in events:
        if isinstance(e, E.MessageAccepted) and e.trace not in first_from:
            first_from[e.trace] = e
    bad_traces = {t: a for t, a in first_from.items()
                  if a.host in mxs and ip_matches(a.client_ip, blocked)}
    cxs = []
    for e in events:
        if isinstance(e, E.DeliveredToMailbox) and e.trace in bad_traces:
            a = bad_traces[e.trace]
            cxs.append(cx(f"mail from blocked {a.client_ip} accepted by {a.host} reached a "
                          f"mailbox on {e.host}", msg=e.msg, trace=e.trace, rcpt=e.rcpt,
                          hosts=[a.host, e.host], times=[a.t, e.t], events=[a, e]))
    hit = sorted({e.host for e in tried})
    return verdict(gid, cxs, ok=f"blocked clients reached {hit}; none of their mail was "
                                f"delivered", bad="{n} deliveries of blocked mail")
