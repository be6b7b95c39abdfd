"""SMTP feed checks (seed 001): two-day queue, 20 s latency, lock-down."""
from __future__ import annotations

from mta import events as E
from sim.evidence.checks.base import check, cx, ip_matches, undecidable, verdict
from sim.evidence.checks.helpers import delivery_rounds
from sim.evidence.checks.params.feed import (FeedLatencyParams, FeedLockdownParams,
                                             FeedQueueParams)
from sim.evidence.lifecycle import (BOUNCED, DELIVERED, DISCARDED, QUEUED, RELAYED,
                                    RELAYED_OUT, RecipientLife, domain_of)
from sim.evidence.model import Evidence, percentile, within
from sim.events import MailRetrieved


@check("feed-queue-2d")
def feed_queue_2d(ev: Evidence, params: FeedQueueParams):
    """While the client is offline the feed holds and retries its mail for
    up to the lifetime; delivered if the client returns in time, bounced only
    after.

    Params (:class:`FeedQueueParams`): ``feed``, ``client``, ``lifetime``,
    ``max_gap``, ``tolerance``.  No copy may bounce before its lifetime,
    nor stay queued (or be relayed) later than its lifetime plus
    ``max_gap``.  Judged: every copy the feed queued for one
    of the client's domains (the domains the client's server took mail for,
    or the feed tried it with), attempted or not; copies deleted by a named
    policy (virus, spam) or filed into the feed's own mailboxes are not
    held for the client and are left out.  An operator's
    ``QueueLifetimeSet`` for a domain replaces the lifetime of every copy
    still queued at its time.
    """
    gid = "feed-queue-2d"
    feed, client = params.feed, params.client
    lifetime, gap, tol = params.lifetime, params.max_gap, params.tolerance
    downs = ev.down_periods(client)
    if not downs:
        return undecidable(gid, f"no LinkDown of the client {client} in the log")
    domains = _client_domains(ev, feed, client)
    lives = [lf for lf in ev.lives_on(feed)
             if lf.queued_t is not None and domain_of(lf.rcpt) in domains
             and lf.fate != DISCARDED]
    if not lives:
        return undecidable(gid, f"no mail for {client} was queued on the feed {feed}")
    changes = [e for e in ev.of(E.QueueLifetimeSet) if e.host == feed]
    end = ev.end
    pop3 = mailbox_periods(ev, feed, end)
    cxs, extended = [], 0
    for lf in lives:
        where = dict(msg=lf.msg, trace=lf.trace, rcpt=lf.rcpt, hosts=[feed, client],
                     events=lf.events)
        switched = pop3.get(domain_of(lf.rcpt), [])
        wrong = _wrong_service(lf, switched)
        if wrong:
            cxs.append(cx(wrong[0], times=[wrong[1]], cause="both-services", **where))
            continue
        last = lf.fate_t if lf.fate_t is not None else end
        life, by = lifetime, None
        for c in changes:
            if c.t <= last and c.domain == domain_of(lf.rcpt):
                life, by = c.lifetime, c
        if by is not None and lf.fate in (RELAYED, RELAYED_OUT) \
                and last - lf.queued_t > lifetime:
            extended += 1
        if by is not None:
            where["events"] = lf.events + [by]
        age = last - lf.queued_t
        if lf.fate == BOUNCED and age < life - tol:
            cxs.append(cx(f"bounced after {age:g} s, before the {life:g} s lifetime",
                          times=[lf.queued_t, lf.fate_t], cause="bounced-early", **where))
        elif lf.fate == QUEUED and age > life + gap + tol:
            cxs.append(cx(f"still queued {age:g} s after queueing, past the lifetime",
                          times=[lf.queued_t, end], cause="kept-past-lifetime", **where))
        elif lf.fate in (RELAYED, RELAYED_OUT) and age > life + gap + tol:
            # Kept past its lifetime (the sender waits for a bounce that
            # should have come), unless an operator extended it.
            cxs.append(cx(f"relayed {age:g} s after queueing, past the {life:g} s lifetime",
                          times=[lf.queued_t, lf.fate_t], cause="kept-past-lifetime", **where))
        elif lf.fate not in (BOUNCED, QUEUED, RELAYED, RELAYED_OUT, DELIVERED):
            cxs.append(cx(f"ended {lf.fate}: {lf.detail}", times=[lf.queued_t], cause="not-held",
                          **where))
        stop = min(last, lf.queued_t + life)
        marks = [lf.queued_t] + [r for r in delivery_rounds(lf) if r <= stop] + [stop]
        for a, b in zip(marks, marks[1:]):
            if b - a > gap + tol:
                cxs.append(cx(f"no attempt for {b - a:g} s (longest allowed {gap:g} s)",
                              times=[a, b], cause="retry-gap", **where))
                break
    kept = f"; {extended} delivered after {lifetime:g} s thanks to the operator's " \
           f"extension" if changes else ""
    if pop3:
        read = {(e.trace, e.mailbox) for e in ev.of(MailRetrieved) if e.server == feed}
        filed = [lf for lf in lives if lf.fate == DELIVERED]
        fetched = sum((lf.trace, lf.rcpt.lower()) in read for lf in filed)
        kept += (f"; {len(filed)} filed into POP3 mailboxes in "
                 f"{sum(map(len, pop3.values()))} switched periods ({fetched} read by the "
                 "client over POP3), none tried at a server meanwhile")
    return verdict(gid, cxs, ok=f"{len(lives)} copies held and retried through "
                                f"{len(downs)} client outages{kept}",
                   bad="{n} feed queueing violations",
                   judged=len(lives), unit="copies queued for the client")


def mailbox_periods(ev: Evidence, feed: str, end: float) -> dict[str, list[tuple[float, float]]]:
    """Per client domain, the half-open periods in which the operator had
    switched it to POP3 mailboxes on ``feed`` (``DeliveryModeSet``)."""
    out: dict[str, list[tuple[float, float]]] = {}
    opened: dict[str, float] = {}
    for e in ev.of(E.DeliveryModeSet):
        if e.host != feed:
            continue
        if e.mode == "mailboxes":
            opened.setdefault(e.domain, float(e.t))
        elif e.domain in opened:
            out.setdefault(e.domain, []).append((opened.pop(e.domain), float(e.t)))
    for domain, start in opened.items():
        out.setdefault(domain, []).append((start, end + 1.0))
    return out


def _wrong_service(lf: RecipientLife, switched: list[tuple[float, float]]
                   ) -> tuple[str, float] | None:
    """Seed 001's "one or the other but not both": a delivery attempt to a
    server while the domain's POP3 mailboxes were active, or a copy filed
    into the feed's mailboxes while the domain was on the feed."""
    for a in lf.attempts:
        if within(a.t, switched):
            return (f"tried {a.dest_host} at {a.t:g} s while the domain was switched to "
                    "POP3 mailboxes", float(a.t))
    if lf.fate == DELIVERED and not within(lf.fate_t, switched):
        return (f"filed into a mailbox on the feed at {lf.fate_t:g} s while the domain was "
                "on the SMTP feed", float(lf.fate_t))
    return None


def _client_domains(ev: Evidence, feed: str, client: str) -> set[str]:
    """The recipient domains whose mail goes from ``feed`` to ``client``:
    those the client's server took copies for, and those of copies the feed
    tried (or relayed to) the client with."""
    out = {domain_of(lf.rcpt) for lf in ev.lives_on(client) if lf.origin == "smtp"}
    for lf in ev.lives_on(feed):
        if (lf.next_hop == client
                or any(getattr(a, "dest_host", "") == client for a in lf.attempts)
                or any(getattr(d, "dest_host", "") == client for d in lf.deferrals)):
            out.add(domain_of(lf.rcpt))
    out.discard("")
    return out


@check("feed-latency-20s")
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


@check("feed-lockdown")
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

