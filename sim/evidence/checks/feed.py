"""SMTP feed checks (seed 001): two-day queue, 20 s latency, lock-down."""
from __future__ import annotations

from pydantic import Field

from mta import events as E
from sim.evidence.checks.base import check, cx, ip_matches, undecidable, verdict
from sim.evidence.checks.helpers import delivery_rounds
from sim.evidence.checks.params import Duration, Host, Number, Params, Texts
from sim.evidence.lifecycle import BOUNCED, QUEUED, RELAYED, RELAYED_OUT, RecipientLife
from sim.evidence.model import Evidence, percentile, within


class FeedQueueParams(Params):
    feed: Host = Field(description="the feed server")
    client: Host = Field(description="the client server whose link comes and goes")
    lifetime: Duration = Field("2d", description="how long the feed holds mail")
    max_gap: Duration = Field("1h", description="longest pause between rounds while alive")
    tolerance: Duration = Field(1, description="slack on each bound")


@check("feed-queue-2d", FeedQueueParams)
def feed_queue_2d(ev: Evidence, params: FeedQueueParams):
    """While the client is offline the feed holds and retries its mail for
    up to the lifetime; delivered if the client returns in time, bounced only
    after.

    Params (:class:`FeedQueueParams`): ``feed``, ``client``, ``lifetime``,
    ``max_gap``, ``tolerance``.  Only the feed's copies bound for ``client`` are judged: those with an attempt,
    deferral or relay naming it (a feed serves many clients).
    """
    gid = "feed-queue-2d"
    feed, client = params.feed, params.client
    lifetime, gap, tol = params.lifetime, params.max_gap, params.tolerance
    downs = ev.down_periods(client)
    if not downs:
        return undecidable(gid, f"no LinkDown of the client {client} in the log")
    lives = [lf for lf in ev.lives_on(feed)
             if lf.queued_t is not None and _bound_for(lf, client)]
    if not lives:
        return undecidable(gid, f"no mail for {client} was queued on the feed {feed}")
    end = ev.end
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
        marks = [lf.queued_t] + [r for r in delivery_rounds(lf) if r <= stop] + [stop]
        for a, b in zip(marks, marks[1:]):
            if b - a > gap + tol:
                cxs.append(cx(f"no attempt for {b - a:g} s (longest allowed {gap:g} s)",
                              times=[a, b], **where))
                break
    return verdict(gid, cxs, ok=f"{len(lives)} copies held and retried through "
                                f"{len(downs)} client outages",
                   bad="{n} feed queueing violations",
                   judged=len(lives), unit="copies queued through client outages")


def _bound_for(life: RecipientLife, client: str) -> bool:
    """Was this copy on its way to ``client`` (an attempt, deferral or relay
    naming it)?"""
    return (life.next_hop == client
            or any(getattr(a, "dest_host", "") == client for a in life.attempts)
            or any(getattr(d, "dest_host", "") == client for d in life.deferrals))


class FeedLatencyParams(Params):
    feed: Host = Field(description="the feed server")
    client: Host = Field(description="the client server")
    median: Number = Field(20, description="highest allowed median latency, in seconds")


@check("feed-latency-20s", FeedLatencyParams, causes={
    "median-over-limit": "the median latency is above the limit (the slowest shown)"})
def feed_latency(ev: Evidence, params: FeedLatencyParams):
    """With the client online, the feed hands mail on within 20 s median.

    Params (:class:`FeedLatencyParams`): ``feed``, ``client``, ``median``.
    Latency = Relayed to the client minus acceptance by the feed, over
    copies accepted while the client's link was up and never deferred.
    The detail gives p50/p90/p99/max.
    """
    gid = "feed-latency-20s"
    feed, client, limit = params.feed, params.client, params.median
    downs = ev.down_periods(client)
    lat, lives = [], []
    for lf in ev.lives_on(feed):
        if lf.fate == RELAYED and lf.next_hop == client \
                and not lf.deferrals and not within(lf.accepted_t, downs):
            lat.append(lf.fate_t - lf.accepted_t)
            lives.append(lf)
    if not lat:
        return undecidable(gid, f"no message went from {feed} to {client} undisturbed")
    p50, p90, p99 = (percentile(lat, q) for q in (50, 90, 99))
    stats = f"n={len(lat)} p50={p50:.3f}s p90={p90:.3f}s p99={p99:.3f}s max={max(lat):.3f}s"
    if p50 <= limit:
        return verdict(gid, [], ok=stats, bad="",
                   judged=len(lat), unit="undisturbed messages")
    slow = sorted(zip(lat, range(len(lat))), reverse=True)[:5]
    cxs = [cx(f"latency {v:.3f} s", msg=lives[i].msg, trace=lives[i].trace, rcpt=lives[i].rcpt,
              hosts=[feed, client], times=[lives[i].accepted_t, lives[i].fate_t],
              events=lives[i].events, cause="median-over-limit") for v, i in slow]
    return verdict(gid, cxs, ok="", bad=f"median above {limit:g} s: {stats}",
                   judged=len(lat), unit="undisturbed messages")


class FeedLockdownParams(Params):
    client: Host = Field(description="the locked-down client server")
    allowed: Texts = Field(description="addresses or CIDR blocks allowed to connect "
                                       "(the feed, loopback, the LAN)")


@check("feed-lockdown", FeedLockdownParams)
def feed_lockdown(ev: Evidence, params: FeedLockdownParams):
    """A locked-down client server refuses every stranger at connect time.

    Params (:class:`FeedLockdownParams`): ``client``, ``allowed``.  A connection from outside ``allowed`` must be refused in the
    reply to CONNECT (4xx/5xx) and never get a message accepted; one from
    inside must be greeted 2xx.
    """
    gid = "feed-lockdown"
    client, allowed = params.client, params.allowed
    accepted = {e.conn for e in ev.of(E.MessageAccepted) if e.host == client}
    cxs, strangers = [], 0
    for conn, rs in ev.replies_by_conn(client).items():
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
                   bad="{n} lock-down violations",
                   judged=strangers, unit="strangers")

