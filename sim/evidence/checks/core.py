"""The cross-cutting checks on mail's fate: conservation, bounce-dsn.
(retry-discipline is in :mod:`.retry`, mx-order in :mod:`.mx`, the
protocol-level ones in :mod:`.smtp`.)"""
from __future__ import annotations

from collections import defaultdict

from mta import events as E
from sim.evidence.checks.base import check, cx, undecidable, verdict
from sim.evidence.checks.params import Params
from sim.evidence.checks.params.core import ConservationParams
from sim.evidence.lifecycle import (BOUNCED_NO_DSN, DISCARDED_UNNAMED, LOSS_FATES, LOST,
                                    RELAYED_UNCONFIRMED, is_null_sender)
from sim.evidence.model import Evidence


_CAUSE_OF_FATE = {RELAYED_UNCONFIRMED: "relayed-unconfirmed",
                  BOUNCED_NO_DSN: "bounced-without-dsn", DISCARDED_UNNAMED: "discarded-unnamed"}


@check("conservation")
def conservation(ev: Evidence, params: ConservationParams):
    """Every recipient copy a host took responsibility for has a fate.

    Per (host, msg, rcpt) taken by MessageAccepted (each recipient the
    client was told was accepted) or MessageSubmitted, the copy must end
    delivered to a mailbox, relayed to a next hop that accepted it (or to a
    host outside the log), bounced with a DSN to a non-null sender (a ``<>``
    sender's bounce needs none), discarded by a named policy, or still be
    queued at the end of the run.  Anything else is silent loss.

    Params (:class:`ConservationParams`): ``duplicates_fail``.  Duplicates
    are always counted in the detail.
    """
    gid = "conservation"
    lives = ev.lifecycles
    if not lives:
        return undecidable(gid, "no MessageAccepted or MessageSubmitted events in the log")
    # A recipient a policy stage dropped after the 250 (the documented
    # "silently drop" recipient limit) names itself in a PolicyDecision.
    dropped = {(d.host, d.conn, d.detail.lower()): d for d in ev.of(E.PolicyDecision)
               if d.decision == "dropped-over-limit"}

    def cause(lf) -> tuple[str, list[E.Event]]:
        if lf.fate != LOST:
            return _CAUSE_OF_FATE[lf.fate], []
        acc = next((e for e in lf.events if isinstance(e, E.MessageAccepted)), None)
        d = dropped.get((lf.host, acc.conn, lf.rcpt.lower())) if acc is not None else None
        return ("dropped-over-limit", [d]) if d is not None else ("never-queued", [])

    cxs = []
    for lf in lives:
        if lf.fate not in LOSS_FATES:
            continue
        why, extra = cause(lf)
        cxs.append(cx(f"{lf.fate}: {lf.detail}", msg=lf.msg, trace=lf.trace, rcpt=lf.rcpt,
                      hosts=[lf.host] + ([lf.next_hop] if lf.next_hop else []),
                      times=[lf.accepted_t] + ([lf.fate_t] if lf.fate_t is not None else []),
                      events=lf.events + extra, cause=why))
    dups = [o for o in ev.outcomes if o.duplicates]
    ndup = sum(o.duplicates for o in dups)
    if params.duplicates_fail:
        deliveries: dict[tuple[str, str], list[E.DeliveredToMailbox]] = defaultdict(list)
        for d in ev.of(E.DeliveredToMailbox):
            deliveries[(d.trace, d.rcpt)].append(d)
        for o in dups:
            evs = deliveries[(o.trace, o.rcpt)]
            cxs.append(cx(f"delivered {o.deliveries} times", trace=o.trace, rcpt=o.rcpt,
                          hosts=[e.host for e in evs], times=[e.t for e in evs], events=evs,
                          cause="duplicate"))
    fates: dict[str, int] = defaultdict(int)
    for lf in lives:
        fates[lf.fate] += 1
    summary = ", ".join(f"{k} {v}" for k, v in sorted(fates.items()))
    return verdict(gid, cxs,
                   ok=f"{len(lives)} recipient copies accounted for ({summary}); "
                      f"duplicates {ndup}",
                   bad=f"{{n}} recipient copies silently lost or duplicated "
                       f"({summary}); duplicates {ndup}",
                   judged=len(lives), unit="recipient copies")


@check("bounce-dsn")
def bounce_dsn(ev: Evidence, params: Params):
    """Each bounce yields exactly one RFC 3464 DSN from ``<>`` to the sender.

    For every Bounced copy whose message had a non-null sender, exactly one
    failure DsnCreated (action ``failed``) on the same host names the
    bounced trace (``about_trace``) and the recipient, with a
    ``multipart/report`` content type, a null ``mail_from`` and ``to`` = the
    original sender.  A message whose sender was ``<>`` never produces a
    DSN.  Every DSN (delay warnings included) is from ``<>``, is
    ``multipart/report``, and is never addressed to ``<>``.  Params: none.
    """
    gid = "bounce-dsn"
    senders: dict[tuple[str, str], str] = {}
    for e in ev.in_order(E.MessageAccepted, E.MessageSubmitted):
        senders.setdefault((e.host, e.msg), e.mail_from)
    dsns: dict[tuple[str, str], list[E.DsnCreated]] = defaultdict(list)
    for d in ev.of(E.DsnCreated):
        dsns[(d.host, d.about_trace)].append(d)
    cxs = []
    bounces = ev.of(E.Bounced)
    for b in bounces:
        sender = senders.get((b.host, b.msg))
        where = dict(msg=b.msg, trace=b.trace, rcpt=b.rcpt, hosts=[b.host])
        if sender is None:
            cxs.append(cx("bounce of a message this host never accepted or submitted",
                          times=[b.t], events=[b], **where))
            continue
        # Delay warnings (action "delayed") are DSNs too, but not the one a give-up owes.
        covering = [d for d in dsns[(b.host, b.trace)]
                    if b.rcpt in d.rcpts and d.action.lower() == "failed"]
        if is_null_sender(sender):
            if covering or b.dsn_trace:
                cxs.append(cx("a DSN was produced for a message whose sender is <>",
                              times=[b.t], events=[b] + covering, **where))
            continue
        if len(covering) != 1:
            cxs.append(cx(f"{len(covering)} DSNs for this bounce, expected exactly one",
                          times=[b.t], events=[b] + covering, **where))
            continue
        d = covering[0]
        bad = []
        if d.to.strip("<>").lower() != sender.strip("<>").lower():
            bad.append(f"DSN to {d.to!r}, not the original sender {sender!r}")
        if not is_null_sender(d.mail_from):
            bad.append(f"DSN from {d.mail_from!r}, not <>")
        if not d.content_type.lower().startswith("multipart/report"):
            bad.append(f"DSN content type {d.content_type!r}, not multipart/report")
        if b.dsn_trace and b.dsn_trace != d.trace:
            bad.append(f"bounce names DSN {b.dsn_trace!r} but the DSN is {d.trace!r}")
        if bad:
            cxs.append(cx("; ".join(bad), times=[b.t, d.t], events=[b, d], **where))
    bounced = {(b.host, b.trace) for b in bounces}
    for ds in dsns.values():
        for d in ds:
            where = dict(msg=d.msg, trace=d.trace, hosts=[d.host], times=[d.t], events=[d])
            if is_null_sender(d.to):
                cxs.append(cx("DSN addressed to <>", **where))
            elif not is_null_sender(d.mail_from) or \
                    not d.content_type.lower().startswith("multipart/report"):
                cxs.append(cx(f"{d.action} DSN from {d.mail_from!r} as {d.content_type!r}, "
                              f"expected <> and multipart/report", **where))
            elif (d.host, d.about_trace) not in bounced and d.action == "failed":
                cxs.append(cx("failure DSN without a Bounced event", msg=d.msg,
                              trace=d.trace, hosts=[d.host], times=[d.t], events=[d]))
    ndsn = sum(len(v) for v in dsns.values())
    return verdict(gid, cxs, ok=f"{len(bounces)} bounces, {ndsn} DSNs, all well formed",
                   bad="{n} bounce/DSN violations",
                   judged=len(bounces) + ndsn, unit="bounces and DSNs")
