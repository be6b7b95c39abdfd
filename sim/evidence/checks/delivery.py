"""Checks of the hosted-domain service (seed 000): MX fallback, senders
giving up, the dial-up primary warning, the queueing server, filters on
every MX."""
from __future__ import annotations

from mta import events as E
from sim.evidence.checks.base import check, cx, ip_matches, undecidable, verdict
from sim.evidence.checks.helpers import delivery_rounds, is_give_up, node_domain
from sim.evidence.checks.params.delivery import (DialupPrimaryParams, FiltersParams,
                                                 MxFallbackParams, QueueingServerParams,
                                                 SenderGivesUpParams)
from sim.evidence.lifecycle import BOUNCED, DELIVERED, QUEUED, RELAYED, RELAYED_OUT, in_domain
from sim.evidence.model import Evidence, within


@check("mx-fallback")
def mx_fallback(ev: Evidence, params: MxFallbackParams):
    """While the primary is unreachable the secondary takes the mail and
    delivers it to the primary once it is back.

    Params (:class:`MxFallbackParams`): ``primary``, ``secondary``, ``grace``.

    Needs LinkDown/LinkUp of the primary.  Fails if senders attempted the
    primary while it was down and no mail reached the secondary then; every
    copy the secondary accepted must be relayed to the primary (and accepted
    there) at a time the primary's link was up.
    """
    gid = "mx-fallback"
    primary, secondary, grace = params.primary, params.secondary, params.grace
    downs = ev.down_periods(primary)
    if not downs:
        return undecidable(gid, f"no LinkDown of the primary {primary} in the log")
    tried = [e for e in ev.of(E.AttemptStarted) if e.dest_host == primary
             and e.host != secondary and within(e.t, downs)]
    got = [e for e in ev.of(E.MessageAccepted) if e.host == secondary and within(e.t, downs)]
    if not tried and not got:
        return undecidable(gid, f"no delivery was attempted while {primary} was down")
    cxs = []
    if not got:
        cxs.append(cx(f"senders tried {primary} while it was down but {secondary} accepted "
                      f"nothing then", hosts=[primary, secondary],
                      times=[a for a, _ in downs], events=tried[:5]))
    end = ev.end
    up_since = max([b for a, b in downs if b < end] + [float("-inf")])
    primary_down_at_end = any(a <= end <= b for a, b in downs)
    n = 0
    for lf in ev.lives_on(secondary):
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
                   bad="{n} fallback failures",
                   judged=n, unit="copies taken by the secondary")


def _gave_up(lf) -> bool:
    """The copy's bounce is a give-up: it says so (a 4xx, expiry), or it
    follows a deferred round with no attempt in between, so no server
    answered the permanent failure: a transient one was turned into it."""
    b = lf.fate_event
    if not isinstance(b, E.Bounced):
        return False
    if is_give_up(b):
        return True
    before = [e for e in lf.events if isinstance(e, (E.AttemptStarted, E.Deferred))]
    return bool(before) and isinstance(before[-1], E.Deferred)


@check("sender-gives-up")
def sender_gives_up(ev: Evidence, params: SenderGivesUpParams):
    """A sender that reaches no MX keeps retrying, then bounces: never silent.

    Params (:class:`SenderGivesUpParams`): ``senders``, ``min_retry_span``.

    Judged on copies on those hosts that were never relayed or delivered:
    each must end bounced with a DSN, or still be queued.
    """
    gid = "sender-gives-up"
    lives = ev.lifecycles
    senders = set(params.senders) if params.senders is not None else \
        {lf.host for lf in lives if lf.origin not in ("smtp", "dsn")}
    span = params.min_retry_span
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
        rounds = delivery_rounds(lf)
        t0 = lf.queued_t if lf.queued_t is not None else lf.accepted_t
        if _gave_up(lf) and (len(rounds) < 2 or lf.fate_t - t0 < span):
            cxs.append(cx(f"gave up after {lf.fate_t - t0:g} s and {len(rounds)} rounds "
                          f"(expected at least {span:g} s and 2 rounds)",
                          times=[t0, lf.fate_t], **where))
    nb = sum(1 for lf in stuck if lf.fate == BOUNCED)
    return verdict(gid, cxs, ok=f"{len(stuck)} undeliverable copies: {nb} bounced with a DSN "
                                f"after retrying, {len(stuck) - nb} still queued",
                   bad="{n} undeliverable copies not handled visibly",
                   judged=len(stuck), unit="undeliverable sender copies")


@check("dialup-primary-loses-mail")
def dialup_primary_loses_mail(ev: Evidence, params: DialupPrimaryParams):
    """The guarantee "no mail for the dial-up primary's domain is bounced".

    The documented warning is that it does not hold: scenarios expect it
    ``violated``, and the counterexamples are the bounces, each with the
    give-up time and whether the primary's link was down then.

    Params (:class:`DialupPrimaryParams`): ``primary``, ``domain``.
    Undecidable without a LinkDown of the primary or without mail for the
    domain.
    """
    gid = "dialup-primary-loses-mail"
    primary, domain = params.primary, params.domain
    downs = ev.down_periods(primary)
    if not downs:
        return undecidable(gid, f"no LinkDown of the primary {primary} in the log")
    lives = [lf for lf in ev.lifecycles if in_domain(lf.rcpt, domain)]
    if not lives:
        return undecidable(gid, f"no mail for {domain} in the log")
    cxs = []
    for lf in lives:
        b = lf.fate_event
        if isinstance(b, E.Bounced):
            down = within(b.t, downs)
            why = ("rejected-permanently" if not _gave_up(lf) else
                   "sender-gave-up-while-link-down" if down else "sender-gave-up-while-link-up")
            cxs.append(cx(f"bounced by {lf.host} ({b.code} {b.reason}); primary link "
                          f"{'down' if down else 'up'} at give-up",
                          msg=lf.msg, trace=lf.trace, rcpt=lf.rcpt, hosts=[lf.host, primary],
                          times=[lf.accepted_t, b.t], events=lf.events, cause=why))
    return verdict(gid, cxs, ok=f"{len(lives)} copies for {domain}; none bounced",
                   bad=f"{{n}} recipients at {domain} bounced while the dial-up primary "
                       f"{primary} was unreachable ({len(downs)} outages)",
                   judged=len(lives), unit="copies for the domain")


@check("queueing-server-etrn")
def queueing_server_etrn(ev: Evidence, params: QueueingServerParams):
    """A queueing server holds the dial-up customer's mail; ETRN releases it.

    Params (:class:`QueueingServerParams`): ``queue_server``,
    ``delivery_server``, ``domain``, ``lifetime``, ``within``.

    Nothing for the domain bounces, except copies queued during an outage
    of the delivery server longer than ``lifetime``; every 2xx ETRN for the
    domain at the queueing server is followed, within ``within``, by an
    attempt for each copy held for the domain then, and by a new connection
    from the queueing server to the delivery server; an ETRN refused while
    mail for the domain is held fails.
    """
    gid = "queueing-server-etrn"
    qs, ds, domain = params.queue_server, params.delivery_server, params.domain
    lifetime, win = params.lifetime, params.within
    etrns = [e for e in ev.of(E.EtrnRequest) if e.host == qs
             and in_domain("x@" + node_domain(e.argument)[0], domain)]
    if not etrns:
        return undecidable(gid, f"no ETRN for {domain} reached {qs}")
    long_downs = [(a, b) for a, b in ev.down_periods(ds) if b - a > lifetime]
    cxs = []
    for lf in ev.lifecycles:
        if in_domain(lf.rcpt, domain) and isinstance(lf.fate_event, E.Bounced) \
                and not within(lf.accepted_t, long_downs):
            cxs.append(cx("bounced although the dial-up link came up within the lifetime",
                          msg=lf.msg, trace=lf.trace, rcpt=lf.rcpt, hosts=[lf.host],
                          times=[lf.accepted_t, lf.fate_t], events=lf.events))
    tries = ev.attempts_of(qs)
    connects = [e for e in ev.of(E.ConnectAttempt) if e.host == qs and e.dest_host == ds]
    for et in etrns:
        held = ev.held_copies(qs, domain, et.t)
        if not 200 <= et.code < 300:
            if held:
                cxs.append(cx(f"ETRN answered {et.code} while {len(held)} copies for {domain} "
                              f"were held", hosts=[qs, ds], times=[et.t], events=[et]))
            continue
        late = [h for h in held
                if not any(et.t <= t <= et.t + win for t in tries.get((h.msg, h.rcpt), ()))]
        for h in late:
            cxs.append(cx(f"held at ETRN time, not attempted within {win:g} s", msg=h.msg,
                          trace=h.trace, rcpt=h.rcpt, hosts=[qs, ds], times=[et.t], events=[et]))
        if held and not any(et.t <= c.t <= et.t + win for c in connects):
            cxs.append(cx(f"no new connection from {qs} to {ds} after ETRN", hosts=[qs, ds],
                          times=[et.t], events=[et]))
    return verdict(gid, cxs, ok=f"{len(etrns)} ETRN requests released the held mail; "
                                f"nothing for {domain} bounced",
                   bad="{n} queueing-server failures",
                   judged=len(etrns), unit="ETRN requests")


@check("filters-on-every-mx")
def filters_on_every_mx(ev: Evidence, params: FiltersParams):
    """Mail from a blocked IP never reaches a mailbox, whichever MX it hit.

    Params (:class:`FiltersParams`): ``mxs``, ``blocked``.
    Counterexamples are deliveries of traces whose first SMTP acceptance was
    from a blocked address.  Undecidable if no blocked address connected.
    """
    gid = "filters-on-every-mx"
    mxs, blocked = set(params.mxs), params.blocked
    tried = [e for e in ev.in_order(E.ConnectionOpened, E.SmtpReply) if e.host in mxs and ip_matches(e.client_ip, blocked)]
    if not tried:
        return undecidable(gid, f"no connection from a blocked address to {sorted(mxs)}")
    first_from: dict[str, E.MessageAccepted] = {}
    for e in ev.of(E.MessageAccepted):
        if e.trace not in first_from:
            first_from[e.trace] = e
    bad_traces = {t: a for t, a in first_from.items()
                  if a.host in mxs and ip_matches(a.client_ip, blocked)}
    cxs = []
    for e in ev.of(E.DeliveredToMailbox):
        if e.trace in bad_traces:
            a = bad_traces[e.trace]
            cxs.append(cx(f"mail from blocked {a.client_ip} accepted by {a.host} reached a "
                          f"mailbox on {e.host}", msg=e.msg, trace=e.trace, rcpt=e.rcpt,
                          hosts=[a.host, e.host], times=[a.t, e.t], events=[a, e],
                          cause="blocked-mail-delivered"))
    hit = sorted({e.host for e in tried})
    return verdict(gid, cxs, ok=f"blocked clients reached {hit}; none of their mail was "
                                f"delivered", bad="{n} deliveries of blocked mail",
                   judged=len(tried), unit="connections or replies from blocked addresses")
