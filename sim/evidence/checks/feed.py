"""SMTP feed checks (seed 001): two-day queue, 20 s latency, lock-down."""
from __future__ import annotations

from mta import events as E
from sim.evidence.checks.base import (
    check, cx, ip_matches, p_dur, p_list, p_num, p_str, undecidable, verdict, within)
from sim.evidence.checks.core import _rounds
from sim.evidence.checks.helpers import replies_by_conn
from sim.evidence.projections import (
    BOUNCED, QUEUED, RELAYED, RELAYED_OUT, down_periods, lifecycles, run_bounds)


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of a non-empty list."""
    v = sorted(values)
    if len(v) == 1:
        return v[0]
    pos = (len(v) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


@check("feed-queue-2d")
def feed_queue_2d(events: list[E.Event], params: dict):
    """While the client is offline the feed holds and retries its mail for
    up to the lifetime; delivered if the client returns in time, bounced only
    after.

    Params: ``feed``, ``client`` (hosts), ``lifetime`` (duration, default
    2d), ``max_gap`` (duration, default 1h: longest allowed pause between
    rounds while alive), ``tolerance`` (seconds, default 1).  Only the
    feed's copies bound for ``client`` are judged: those with an attempt,
    deferral or relay naming it (a feed serves many clients).
    """
    gid = "feed-queue-2d"
    feed, client = p_str(params, "feed"), p_str(params, "client")
    lifetime = p_dur(params, "lifetime", "2d")
    gap = p_dur(params, "max_gap", "1h")
    tol = p_dur(params, "tolerance", 1)
    downs = down_periods(events, client)
    if not downs:
        return undecidable(gid, f"no LinkDown of the client {client} in the log")
    lives = [lf for lf in lifecycles(events)
             if lf.host == feed and lf.queued_t is not None and _bound_for(lf, client)]
    if not lives:
        return undecidable(gid, f"no mail for {client} was queued on the feed {feed}")
    _, end = run_bounds(events)
    cxs = []
    for lf in lives:
        where = dict(msg=lf.msg, trace=lf.trace, rcpt=lf.rcpt, hosts=[feed, client],
                     events=lf.events)
        age = (lf.fate_t if lf.fate_t is not None else end) - lf.queued_t
        if lf.fate == BOUNCED and age < lifetime - tol:
            cxs.append(cx(f"bounced after {age:g} s, before the {lifetime:g} s lifetime",
                          times=[lf.queued_t, lf.fate_t], **where))
        elif lf.fate == QUEUED and age > lifetime + gap + tol:
            cxs.append(cx(f"still queued {age:g} s after queueing, past the lifetime",
                          times=[lf.queued_t, end], **where))
        elif lf.fate not in (BOUNCED, QUEUED, RELAYED, RELAYED_OUT):
            cxs.append(cx(f"ended {lf.fate}: {lf.detail}", times=[lf.queued_t], **where))
        stop = min(lf.fate_t if lf.fate_t is not None else end, lf.queued_t + lifetime)
        marks = [lf.queued_t] + [r for r in _rounds(lf) if r <= stop] + [stop]
        for a, b in zip(marks, marks[1:]):
            if b - a > gap + tol:
                cxs.append(cx(f"no attempt for {b - a:g} s (longest allowed {gap:g} s)",
                              times=[a, b], **where))
                break
    return verdict(gid, cxs, ok=f"{len(lives)} copies held and retried through "
                                f"{len(downs)} client outages",
                   bad="{n} feed queueing violations")


def _bound_for(life, client: str) -> bool:
    """Was this copy on its way to ``client`` (an attempt, deferral or relay
    naming it)?"""
    return (life.next_hop == client
            or any(getattr(a, "dest_host", "") == client for a in life.attempts)
            or any(getattr(d, "dest_host", "") == client for d in life.deferrals))


@check("feed-latency-20s")
def feed_latency(events: list[E.Event], params: dict):
    """With the client online, the feed hands mail on within 20 s median.

    Params: ``feed``, ``client`` (hosts), ``median`` (seconds, default 20).
    Latency = Relayed to the client minus acceptance by the feed, over
    copies accepted while the client's link was up and never deferred.
    The detail gives p50/p90/p99/max.
    """
    gid = "feed-latency-20s"
    feed, client = p_str(params, "feed"), p_str(params, "client")
    limit = p_num(params, "median", 20)
    downs = down_periods(events, client)
    lat, lives = [], []
    for lf in lifecycles(events):
        if lf.host == feed and lf.fate == RELAYED and lf.next_hop == client \
                and not lf.deferrals and not within(lf.accepted_t, downs):
            lat.append(lf.fate_t - lf.accepted_t)
            lives.append(lf)
    if not lat:
        return undecidable(gid, f"no message went from {feed} to {client} undisturbed")
    p50, p90, p99 = (percentile(lat, q) for q in (50, 90, 99))
    stats = f"n={len(lat)} p50={p50:.3f}s p90={p90:.3f}s p99={p99:.3f}s max={max(lat):.3f}s"
    if p50 <= limit:
        return verdict(gid, [], ok=stats, bad="")
    slow = sorted(zip(lat, range(len(lat))), reverse=True)[:5]
    cxs = [cx(f"latency {v:.3f} s", msg=lives[i].msg, trace=lives[i].trace, rcpt=lives[i].rcpt,
              hosts=[feed, client], times=[lives[i].accepted_t, lives[i].fate_t],
              events=lives[i].events) for v, i in slow]
    return verdict(gid, cxs, ok="", bad=f"median above {limit:g} s: {stats}")


@check("feed-lockdown")
def feed_lockdown(events: list[E.Event], params: dict):
    """A locked-down client server refuses every stranger at connect time.

    Params: ``client`` (host), ``allowed`` (IPs/CIDRs: the feed, loopback,
    the LAN).  A connection from outside ``allowed`` must be refused in the
    reply to CONNECT (4xx/5xx) and never get a message accepted; one from
    inside must be greeted 2xx.
    """
    gid = "feed-lockdown"
    client = p_str(params, "client")
    allowed = p_list(params, "allowed")
    accepted = {e.conn for e in events if isinstance(e, E.MessageAccepted) and e.host == client}
    cxs, strangers = [], 0
    for conn, rs in replies_by_conn(events, client).items():
        greet = next((r for r in rs if r.command.upper() == "CONNECT"), None)
        ip = rs[0].client_ip
        if ip_matches(ip, allowed):
            if greet is not None and greet.code >= 400:
                cxs.append(cx(f"allowed client {ip} refused at connect", hosts=[client],
                              times=[greet.t], events=[greet]))
            continue
        strangers += 1
        if greet is None or greet.code < 400 or conn in accepted:
            cxs.append(cx(f"stranger {ip} not refused at connect time", hosts=[client],
                          times=[rs[0].t], events=rs[:4]))
    if strangers == 0:
        return undecidable(gid, f"no connection from outside {allowed} reached {client}")
    return verdict(gid, cxs, ok=f"{strangers} strangers refused at connect",
                   bad="{n} lock-down violations")
