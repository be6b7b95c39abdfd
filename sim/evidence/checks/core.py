"""The cross-cutting checks on mail's fate: conservation, retry-discipline,
bounce-dsn.  (The protocol-level ones are in :mod:`.smtp`.)"""
from __future__ import annotations

from collections import defaultdict

from mta import events as E
from sim.evidence.checks.base import (
    ParamError, check, cx, p_dur, p_list, p_num, undecidable, verdict)
from sim.evidence.projections import (
    LOSS_FATES, is_null_sender, lifecycles, outcomes, run_bounds)


@check("conservation")
def conservation(events: list[E.Event], params: dict):
    """Every recipient copy a host took responsibility for has a fate.

    Per (host, msg, rcpt) taken by MessageAccepted (each recipient the
    client was told was accepted) or MessageSubmitted, the copy must end
    delivered to a mailbox, relayed to a next hop that accepted it (or to a
    host outside the log), bounced with a DSN to a non-null sender (a ``<>``
    sender's bounce needs none), discarded by a named policy, or still be
    queued at the end of the run.  Anything else is silent loss.

    Params: ``duplicates_fail`` (bool, default false): also fail when a
    (trace, rcpt) reached a mailbox more than once.  Duplicates are always
    counted in the detail.
    """
    gid = "conservation"
    lives = lifecycles(events)
    if not lives:
        return undecidable(gid, "no MessageAccepted or MessageSubmitted events in the log")
    cxs = [cx(f"{lf.fate}: {lf.detail}", msg=lf.msg, trace=lf.trace, rcpt=lf.rcpt,
              hosts=[lf.host] + ([lf.next_hop] if lf.next_hop else []),
              times=[lf.accepted_t] + ([lf.fate_t] if lf.fate_t is not None else []),
              events=lf.events)
           for lf in lives if lf.fate in LOSS_FATES]
    dups = [o for o in outcomes(events, lives) if o.duplicates]
    ndup = sum(o.duplicates for o in dups)
    if params.get("duplicates_fail"):
        for o in dups:
            evs = [e for e in events if isinstance(e, E.DeliveredToMailbox)
                   and e.trace == o.trace and e.rcpt == o.rcpt]
            cxs.append(cx(f"delivered {o.deliveries} times", trace=o.trace, rcpt=o.rcpt,
                          hosts=[e.host for e in evs], times=[e.t for e in evs], events=evs))
    fates: dict[str, int] = defaultdict(int)
    for lf in lives:
        fates[lf.fate] += 1
    summary = ", ".join(f"{k} {v}" for k, v in sorted(fates.items()))
    return verdict(gid, cxs,
                   ok=f"{len(lives)} recipient copies accounted for ({summary}); "
                      f"duplicates {ndup}",
                   bad=f"{{n}} recipient copies silently lost or duplicated "
                       f"({summary}); duplicates {ndup}")


def _is_give_up(b: E.Bounced) -> bool:
    """A bounce after transient failures (queue lifetime over), not a 5xx."""
    text = f"{b.reason} {b.text}".lower()
    return (400 <= b.code < 500 or "expire" in text or "lifetime" in text
            or "4.4.7" in text or "5.4.7" in text)


def _rounds(life) -> list[float]:
    """Start times of the delivery rounds of one copy.

    A round is the run of AttemptStarted events (one per MX host tried)
    until the Deferred that ends it; its time is its first attempt.
    """
    starts: list[float] = []
    open_round = False
    for ev in sorted(life.events, key=lambda e: e.t):
        if isinstance(ev, E.AttemptStarted) and not open_round:
            starts.append(float(ev.t))
            open_round = True
        elif isinstance(ev, E.Deferred):
            open_round = False
    return starts


@check("retry-discipline")
def retry_discipline(events: list[E.Event], params: dict):
    """Deferred deliveries are retried neither too soon nor too rarely, and
    not given up before the queue lifetime.

    Params: ``min_backoff``, ``max_backoff``, ``lifetime`` (durations:
    seconds or ``300``, ``90m``, ``5d``); ``hosts`` (list; default every host
    that queued mail); ``per_host`` ({host: {same keys}} overrides);
    ``tolerance`` (seconds of slack on each bound, default 1).

    Per (host, msg, rcpt): the gap between delivery rounds is at least
    min_backoff, except right after a Released (ETRN/finger/probe) on that
    host; while the copy is alive, queued and not held, no gap (from queueing
    to the first round, between rounds, from the last round to the fate or
    the end of the run) exceeds max_backoff; a give-up bounce (4xx-based,
    or naming expiry) comes no sooner than lifetime after queueing.
    """
    gid = "retry-discipline"
    base = {k: params[k] for k in ("min_backoff", "max_backoff", "lifetime") if k in params}
    per_host = params.get("per_host", {}) or {}
    tol = p_num(params, "tolerance", 1.0)
    lives = [lf for lf in lifecycles(events) if lf.queued_t is not None]
    if not lives:
        return undecidable(gid, "no Queued events in the log")
    want = set(p_list(params, "hosts")) if "hosts" in params else None
    if want is not None:
        lives = [lf for lf in lives if lf.host in want]
        if not lives:
            return undecidable(gid, f"no Queued events on hosts {sorted(want)}")
    if any(lf.deferrals for lf in lives) and not any(lf.attempts for lf in lives):
        return undecidable(gid, "Deferred events but no AttemptStarted events in the log")
    _, end = run_bounds(events)
    releases: dict[str, list[float]] = defaultdict(list)
    for ev in events:
        if isinstance(ev, E.Released):
            releases[ev.host].append(float(ev.t))
    limits: dict[str, tuple[float, float, float]] = {}
    cxs = []
    checked = 0
    for lf in lives:
        if lf.host not in limits:
            p = dict(base, **per_host.get(lf.host, {}))
            try:
                limits[lf.host] = (p_dur(p, "min_backoff"), p_dur(p, "max_backoff"),
                                   p_dur(p, "lifetime"))
            except ParamError as exc:
                raise ParamError(f"{exc} (for host {lf.host})") from None
        lo, hi, life_s = limits[lf.host]
        rounds = _rounds(lf)
        checked += 1
        where = dict(msg=lf.msg, trace=lf.trace, rcpt=lf.rcpt, hosts=[lf.host])
        for a, b in zip(rounds, rounds[1:]):
            if b - a < lo - tol and not any(a < r <= b + tol for r in releases[lf.host]):
                cxs.append(cx(f"retried after {b - a:g} s, below the minimum backoff {lo:g} s",
                              times=[a, b], events=lf.attempts + lf.deferrals, **where))
        if not lf.held:
            stop = lf.fate_t if lf.fate_t is not None else end
            marks = [lf.queued_t] + [r for r in rounds if r >= lf.queued_t] + [stop]
            for a, b in zip(marks, marks[1:]):
                if a >= lf.queued_t + life_s:
                    break
                b = min(b, lf.queued_t + life_s)    # only while the lifetime lasts
                if b - a > hi + tol:
                    cxs.append(cx(f"no delivery attempt for {b - a:g} s while queued, above "
                                  f"the maximum backoff {hi:g} s", times=[a, b],
                                  events=lf.events, **where))
                    break
        fe = lf.fate_event
        if isinstance(fe, E.Bounced) and _is_give_up(fe) and fe.t - lf.queued_t < life_s - tol:
            cxs.append(cx(f"gave up after {fe.t - lf.queued_t:g} s, before the queue "
                          f"lifetime {life_s:g} s", times=[lf.queued_t, fe.t],
                          events=lf.events, **where))
    deferred = sum(1 for lf in lives if lf.deferrals)
    return verdict(gid, cxs,
                   ok=f"{checked} queued copies ({deferred} deferred at least once) kept "
                      f"their retry discipline",
                   bad="{n} retry-discipline violations")


@check("bounce-dsn")
def bounce_dsn(events: list[E.Event], params: dict):
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
    for ev in events:
        if isinstance(ev, (E.MessageAccepted, E.MessageSubmitted)):
            senders.setdefault((ev.host, ev.msg), ev.mail_from)
            senders.setdefault(("trace", ev.trace), ev.mail_from)
    dsns: dict[tuple[str, str], list[E.DsnCreated]] = defaultdict(list)
    for ev in events:
        if isinstance(ev, E.DsnCreated):
            dsns[(ev.host, ev.about_trace)].append(ev)
    cxs = []
    bounces = [e for e in events if isinstance(e, E.Bounced)]
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
    for ds in dsns.values():
        for d in ds:
            where = dict(msg=d.msg, trace=d.trace, hosts=[d.host], times=[d.t], events=[d])
            if is_null_sender(d.to):
                cxs.append(cx("DSN addressed to <>", **where))
            elif not is_null_sender(d.mail_from) or \
                    not d.content_type.lower().startswith("multipart/report"):
                cxs.append(cx(f"{d.action} DSN from {d.mail_from!r} as {d.content_type!r}, "
                              f"expected <> and multipart/report", **where))
            elif not any(b.host == d.host and b.trace == d.about_trace for b in bounces) \
                    and d.action == "failed":
                cxs.append(cx("failure DSN without a Bounced event", msg=d.msg,
                              trace=d.trace, hosts=[d.host], times=[d.t], events=[d]))
    ndsn = sum(len(v) for v in dsns.values())
    return verdict(gid, cxs, ok=f"{len(bounces)} bounces, {ndsn} DSNs, all well formed",
                   bad="{n} bounce/DSN violations")
