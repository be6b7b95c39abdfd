"""Projections: state folded from an event log.  Pure functions of the log.

* :func:`lifecycles`: per (host, msg, rcpt) from acceptance to fate, with
  every attempt and deferral;
* :func:`outcomes`: per (trace, rcpt) across hops, the end-to-end fate;
* :func:`replay`: every host's queue and every link's state at time t;
* :func:`queue_depths`, :func:`queue_intervals` (pandas), :func:`link_periods`,
  :func:`smtp_transactions`.

Time convention: an event stamped exactly ``t`` has happened "at t", so
``replay(events, t)`` includes it.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable

from mta import events as E

# Fates of one recipient copy on one host.  The LOSS ones are what
# ``conservation`` reports.
DELIVERED = "delivered"
RELAYED = "relayed"                  # next hop (in the log) accepted it
RELAYED_OUT = "relayed-out"          # next hop outside the simulation answered 250
RELAYED_UNCONFIRMED = "relayed-unconfirmed"  # next hop is in the log but never accepted it
BOUNCED = "bounced"                  # with a DSN to the (non-null) sender
BOUNCED_NULL_SENDER = "bounced-null-sender"  # sender was <>: no DSN may be sent
BOUNCED_NO_DSN = "bounced-no-dsn"
DISCARDED = "discarded"
DISCARDED_UNNAMED = "discarded-unnamed"
QUEUED = "queued"
LOST = "lost"
LOSS_FATES = frozenset({RELAYED_UNCONFIRMED, BOUNCED_NO_DSN, DISCARDED_UNNAMED, LOST})

TERMINAL = (E.Relayed, E.DeliveredToMailbox, E.Bounced, E.Discarded)


def is_null_sender(addr: str | None) -> bool:
    """True for the null reverse-path (``<>``, written ``""`` or ``"<>"``)."""
    return addr is None or addr.strip() in ("", "<>")


def domain_of(addr: str) -> str:
    """The domain of an address, lower case, without brackets; "" if none."""
    a = addr.strip().strip("<>")
    if "@" not in a:
        return ""
    return a.rsplit("@", 1)[1].lower().rstrip(".")


def in_domain(addr: str, domain: str) -> bool:
    """``addr`` is at ``domain`` or one of its subdomains."""
    d, want = domain_of(addr), domain.lower().rstrip(".")
    return d == want or d.endswith("." + want)


def run_bounds(events: list[E.Event]) -> tuple[float, float]:
    """(start, end) of the run: RunStarted/RunEnded, else first/last stamp."""
    start = next((e.t for e in events if isinstance(e, E.RunStarted)), None)
    end = next((e.t for e in reversed(events) if isinstance(e, E.RunEnded)), None)
    ts = [e.t for e in events]
    if start is None:
        start = min(ts) if ts else 0.0
    if end is None:
        end = max(ts) if ts else 0.0
    return float(start), float(end)


def hosts_in_log(events: Iterable[E.Event]) -> set[str]:
    return {e.host for e in events if not isinstance(e, (E.RunStarted, E.RunEnded,
                                                         E.GuaranteeExpected))}


_DURATION = re.compile(r"(\d+(?:\.\d+)?)([dhms])")


def parse_duration(text: str | float | int) -> float:
    """Seconds from ``90``, ``"90"``, ``"90m"``, ``"36h"``, ``"2d4h"``, ``"1h30m"``."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    s = str(text).strip().lower()
    try:
        return float(s)
    except ValueError:
        pass
    pos, total = 0, 0.0
    unit = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * unit[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise ValueError(f"not a duration: {text!r} (expected e.g. 3600, 90m, 36h, 2d4h)")
    return total


# --------------------------------------------------------------------------
# Per-recipient lifecycle on one host
# --------------------------------------------------------------------------

@dataclass
class RecipientLife:
    """One recipient of one queued message on one host, acceptance to fate."""

    host: str
    msg: str
    trace: str
    rcpt: str
    mail_from: str
    accepted_t: float
    origin: str                      # "smtp" (MessageAccepted) or the submit origin
    client_ip: str = ""
    queued_t: float | None = None
    held: bool = False
    attempts: list = field(default_factory=list)    # AttemptStarted naming this rcpt
    deferrals: list = field(default_factory=list)   # Deferred for this rcpt
    fate: str = LOST
    fate_t: float | None = None
    fate_event: E.Event | None = None
    next_hop: str = ""
    detail: str = ""
    events: list = field(default_factory=list)      # every event about this copy

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.host, self.msg, self.rcpt)


def lifecycles(events: list[E.Event]) -> list[RecipientLife]:
    """Every (host, msg, rcpt) a host took responsibility for, with its fate.

    A copy is taken by ``MessageAccepted`` (each recipient the client was
    told was accepted) or ``MessageSubmitted``.  Its fate is the first of
    DeliveredToMailbox / Relayed / Bounced / Discarded; otherwise
    ``queued`` if a Queued event holds it, otherwise ``lost``.  A Relayed to
    a host that is in the log must be matched by that host's own
    MessageAccepted for the same trace and recipient.
    """
    lives: dict[tuple[str, str, str], RecipientLife] = {}
    order: list[tuple[str, str, str]] = []
    accepted_by: dict[tuple[str, str, str], list[E.MessageAccepted]] = defaultdict(list)
    dsn_by_trace: dict[str, E.DsnCreated] = {}
    for ev in events:
        if isinstance(ev, (E.MessageAccepted, E.MessageSubmitted)):
            origin = "smtp" if isinstance(ev, E.MessageAccepted) else ev.origin
            for r in ev.rcpts:
                k = (ev.host, ev.msg, r)
                if k in lives:
                    continue
                lives[k] = RecipientLife(
                    host=ev.host, msg=ev.msg, trace=ev.trace, rcpt=r, mail_from=ev.mail_from,
                    accepted_t=float(ev.t), origin=origin,
                    client_ip=getattr(ev, "client_ip", ""), events=[ev])
                order.append(k)
            if isinstance(ev, E.MessageAccepted):
                for r in ev.rcpts:
                    accepted_by[(ev.host, ev.trace, r)].append(ev)
        elif isinstance(ev, E.DsnCreated):
            dsn_by_trace[ev.trace] = ev

    for ev in events:
        msg = getattr(ev, "msg", None)
        if msg is None or isinstance(ev, (E.MessageAccepted, E.MessageSubmitted)):
            continue
        if isinstance(ev, E.AttemptStarted):
            for r in ev.rcpts:
                life = lives.get((ev.host, msg, r))
                if life:
                    life.attempts.append(ev)
                    life.events.append(ev)
            continue
        r = getattr(ev, "rcpt", None)
        if r is None:   # DsnCreated: its msg is the DSN's own queue id
            continue
        life = lives.get((ev.host, msg, r))
        if life is not None:
            life.events.append(ev)
            if isinstance(ev, E.Queued):
                if life.queued_t is None:
                    life.queued_t = float(ev.t)
                life.held = ev.held
            elif isinstance(ev, E.Deferred):
                life.deferrals.append(ev)
            elif isinstance(ev, TERMINAL) and life.fate_event is None:
                life.fate_event = ev
                life.fate_t = float(ev.t)

    hosts = hosts_in_log(events)
    for k in order:
        life = lives[k]
        ev = life.fate_event
        if isinstance(ev, E.DeliveredToMailbox):
            life.fate = DELIVERED
        elif isinstance(ev, E.Relayed):
            life.next_hop = ev.dest_host
            if ev.dest_host not in hosts:
                life.fate = RELAYED_OUT
            else:
                acc = accepted_by.get((ev.dest_host, life.trace, life.rcpt), [])
                if acc:
                    life.fate = RELAYED
                    life.events.append(acc[0])
                else:
                    life.fate = RELAYED_UNCONFIRMED
                    life.detail = (f"relayed to {ev.dest_host}, which never accepted "
                                   f"trace {life.trace} for {life.rcpt}")
        elif isinstance(ev, E.Bounced):
            if is_null_sender(life.mail_from):
                life.fate = BOUNCED_NULL_SENDER
            elif ev.dsn_trace and ev.dsn_trace in dsn_by_trace:
                life.fate = BOUNCED
                life.events.append(dsn_by_trace[ev.dsn_trace])
            else:
                life.fate = BOUNCED_NO_DSN
                life.detail = f"bounced ({ev.code} {ev.reason}) but no DSN was created"
        elif isinstance(ev, E.Discarded):
            if ev.policy.strip():
                life.fate = DISCARDED
            else:
                life.fate = DISCARDED_UNNAMED
                life.detail = "discarded without a named policy"
        elif life.queued_t is not None:
            life.fate = QUEUED
        else:
            life.fate = LOST
            life.detail = ("accepted (the client was told 250) but never queued, "
                           "delivered, relayed, bounced or discarded")
    return [lives[k] for k in order]


# --------------------------------------------------------------------------
# End to end, per (trace, rcpt)
# --------------------------------------------------------------------------

@dataclass
class Outcome:
    """The end-to-end fate of one recipient of one message (by trace)."""

    trace: str
    rcpt: str
    fate: str
    accepted_t: float
    fate_t: float | None
    hops: list[str]
    deliveries: int
    is_dsn: bool

    @property
    def duplicates(self) -> int:
        return max(0, self.deliveries - 1)

    @property
    def latency(self) -> float | None:
        if self.fate == DELIVERED and self.fate_t is not None:
            return self.fate_t - self.accepted_t
        return None


_PRIORITY = [DELIVERED, BOUNCED, BOUNCED_NULL_SENDER, DISCARDED, QUEUED, RELAYED_OUT]


def outcomes(events: list[E.Event], lives: list[RecipientLife] | None = None) -> list[Outcome]:
    """Per (trace, rcpt): delivered > bounced > discarded > queued > left the
    simulation (relayed-out) > lost, over all hops.  DSNs are flagged."""
    lives = lifecycles(events) if lives is None else lives
    dsn_traces = {e.trace for e in events if isinstance(e, E.DsnCreated)}
    groups: dict[tuple[str, str], list[RecipientLife]] = defaultdict(list)
    for life in lives:
        groups[(life.trace, life.rcpt)].append(life)
    deliveries: dict[tuple[str, str], list[float]] = defaultdict(list)
    for e in events:
        if isinstance(e, E.DeliveredToMailbox):
            deliveries[(e.trace, e.rcpt)].append(float(e.t))
    out = []
    for (trace, rcpt), group in groups.items():
        group.sort(key=lambda lf: (lf.accepted_t, lf.host))
        fates = {lf.fate for lf in group}
        fate = next((f for f in _PRIORITY if f in fates), LOST)
        if fate == BOUNCED_NULL_SENDER:
            fate = BOUNCED
        dts = deliveries.get((trace, rcpt), [])
        if fate == DELIVERED and dts:
            fate_t = min(dts)
        else:
            ts = [lf.fate_t for lf in group if lf.fate_t is not None]
            fate_t = max(ts) if ts and fate != QUEUED else None
        out.append(Outcome(trace=trace, rcpt=rcpt, fate=fate, accepted_t=group[0].accepted_t,
                           fate_t=fate_t, hops=[lf.host for lf in group],
                           deliveries=len(dts), is_dsn=trace in dsn_traces))
    out.sort(key=lambda o: (o.accepted_t, o.trace, o.rcpt))
    return out


def counts(events: list[E.Event], lives: list[RecipientLife] | None = None) -> dict[str, int]:
    """The verdict's per-recipient counts over non-DSN (trace, rcpt) pairs."""
    outs = [o for o in outcomes(events, lives) if not o.is_dsn]
    c = {k: 0 for k in ("accepted", "delivered", "bounced", "discarded", "queued",
                         "relayed_out", "lost", "duplicates")}
    for o in outs:
        c["accepted"] += 1
        c["duplicates"] += o.duplicates
        key = {DELIVERED: "delivered", BOUNCED: "bounced", DISCARDED: "discarded",
               QUEUED: "queued", RELAYED_OUT: "relayed_out"}.get(o.fate, "lost")
        c[key] += 1
    c["dsns"] = sum(1 for e in events if isinstance(e, E.DsnCreated))
    return c


# --------------------------------------------------------------------------
# Queues, links, replay
# --------------------------------------------------------------------------

@dataclass
class QueueEntry:
    """One recipient in a host's queue at some moment."""

    msg: str
    trace: str
    rcpt: str
    domain: str
    held: bool
    since: float
    attempts: int = 0
    next_attempt: float | None = None


@dataclass
class ReplayState:
    """Every host's queue and every link's state at time ``t``."""

    t: float
    queues: dict[str, list[QueueEntry]]
    links: dict[tuple[str, str], str]


def replay(events: list[E.Event], t: float) -> ReplayState:
    """Fold the log up to and including time ``t``.

    A recipient is in a host's queue from its Queued event until it is
    relayed, delivered, bounced or discarded.  A link's state before its
    first event is the opposite of that event (a link whose first change is
    "up" was down), and "up" for a link never mentioned before ``t`` but
    whose first later event is "down".
    """
    queues: dict[str, dict[tuple[str, str], QueueEntry]] = defaultdict(dict)
    links: dict[tuple[str, str], str] = {}
    first_link: dict[tuple[str, str], str] = {}
    for ev in events:
        if isinstance(ev, (E.LinkUp, E.LinkDown)):
            first_link.setdefault((ev.host, ev.link), "down" if isinstance(ev, E.LinkUp) else "up")
        if ev.t > t:
            continue
        if isinstance(ev, E.Queued):
            q = queues[ev.host]
            entry = q.get((ev.msg, ev.rcpt))
            if entry is None:
                q[(ev.msg, ev.rcpt)] = QueueEntry(ev.msg, ev.trace, ev.rcpt, ev.domain,
                                                  ev.held, float(ev.t))
            else:
                entry.held = ev.held
        elif isinstance(ev, E.AttemptStarted):
            for r in ev.rcpts:
                entry = queues[ev.host].get((ev.msg, r))
                if entry:
                    entry.attempts += 1
        elif isinstance(ev, E.Deferred):
            entry = queues[ev.host].get((ev.msg, ev.rcpt))
            if entry:
                entry.next_attempt = float(ev.next_attempt)
        elif isinstance(ev, TERMINAL):
            queues[ev.host].pop((ev.msg, ev.rcpt), None)
        elif isinstance(ev, E.Released):
            for entry in queues[ev.host].values():
                if entry.held and (entry.domain == ev.domain
                                   or entry.domain.endswith("." + ev.domain)):
                    entry.held = False
        elif isinstance(ev, E.LinkUp):
            links[(ev.host, ev.link)] = "up"
        elif isinstance(ev, E.LinkDown):
            links[(ev.host, ev.link)] = "down"
    for k, first in first_link.items():
        links.setdefault(k, first)
    out_q = {h: sorted(q.values(), key=lambda e: (e.since, e.msg, e.rcpt))
             for h, q in sorted(queues.items()) if q}
    return ReplayState(t=float(t), queues=out_q, links=dict(sorted(links.items())))


def queue_depths(events: list[E.Event]) -> dict[str, list[tuple[float, int]]]:
    """Per host, the step function of queue depth: [(t, depth after t)]."""
    present: dict[str, set] = defaultdict(set)
    steps: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for ev in events:
        changed = False
        if isinstance(ev, E.Queued):
            k = (ev.msg, ev.rcpt)
            if k not in present[ev.host]:
                present[ev.host].add(k)
                changed = True
        elif isinstance(ev, TERMINAL):
            k = (ev.msg, ev.rcpt)
            if k in present[ev.host]:
                present[ev.host].discard(k)
                changed = True
        if changed:
            s = steps[ev.host]
            if s and s[-1][0] == ev.t:
                s[-1] = (float(ev.t), len(present[ev.host]))
            else:
                s.append((float(ev.t), len(present[ev.host])))
    return dict(sorted(steps.items()))


def queue_intervals(events: list[E.Event]):
    """Queue contents over time as a pandas DataFrame, one row per stay:
    host, msg, trace, rcpt, domain, enter, leave (NaN: still queued at the
    end), left_by (the event kind that removed it, "" if none)."""
    import pandas as pd
    rows: dict[tuple[str, str, str], dict] = {}
    for ev in events:
        if isinstance(ev, E.Queued):
            rows.setdefault((ev.host, ev.msg, ev.rcpt), {
                "host": ev.host, "msg": ev.msg, "trace": ev.trace, "rcpt": ev.rcpt,
                "domain": ev.domain, "enter": float(ev.t), "leave": None, "left_by": ""})
        elif isinstance(ev, TERMINAL):
            r = rows.get((ev.host, ev.msg, ev.rcpt))
            if r is not None and r["leave"] is None:
                r["leave"], r["left_by"] = float(ev.t), ev.kind
    cols = ["host", "msg", "trace", "rcpt", "domain", "enter", "leave", "left_by"]
    return pd.DataFrame(list(rows.values()), columns=cols).astype({"leave": "float64"})


@dataclass
class LinkPeriod:
    host: str
    link: str
    state: str
    start: float
    end: float


def link_periods(events: list[E.Event]) -> list[LinkPeriod]:
    """Each link's up/down periods covering the whole run."""
    start, end = run_bounds(events)
    changes: dict[tuple[str, str], list[tuple[float, str]]] = defaultdict(list)
    for ev in events:
        if isinstance(ev, E.LinkUp):
            changes[(ev.host, ev.link)].append((float(ev.t), "up"))
        elif isinstance(ev, E.LinkDown):
            changes[(ev.host, ev.link)].append((float(ev.t), "down"))
    out: list[LinkPeriod] = []
    for (host, link), ch in sorted(changes.items()):
        state = "down" if ch[0][1] == "up" else "up"
        t0 = min(start, ch[0][0])
        for t, s in ch:
            if s == state:
                continue
            if t > t0:
                out.append(LinkPeriod(host, link, state, t0, t))
            state, t0 = s, t
        out.append(LinkPeriod(host, link, state, t0, max(end, t0)))
    return out


def down_periods(events: list[E.Event], host: str) -> list[tuple[float, float]]:
    """(start, end) of every period when a link of ``host`` was down."""
    return [(p.start, p.end) for p in link_periods(events)
            if p.host == host and p.state == "down"]


@dataclass
class Transaction:
    """One server-side connection: who, what was said, what was answered."""

    conn: str
    host: str
    client_ip: str
    opened_t: float | None
    closed_t: float | None = None
    close_reason: str = ""
    helo: str = ""
    replies: list = field(default_factory=list)     # SmtpReply events
    accepted: list = field(default_factory=list)    # MessageAccepted msg ids


def smtp_transactions(events: list[E.Event]) -> list[Transaction]:
    """The SMTP transaction log, one entry per server connection."""
    tx: dict[str, Transaction] = {}
    for ev in events:
        if isinstance(ev, E.ConnectionOpened):
            tx.setdefault(ev.conn, Transaction(ev.conn, ev.host, ev.client_ip, float(ev.t)))
        elif isinstance(ev, E.SmtpReply):
            tr = tx.setdefault(ev.conn, Transaction(ev.conn, ev.host, ev.client_ip, None))
            tr.replies.append(ev)
            if ev.helo:
                tr.helo = ev.helo
        elif isinstance(ev, E.ConnectionClosed):
            tr = tx.get(ev.conn)
            if tr:
                tr.closed_t, tr.close_reason = float(ev.t), ev.reason
        elif isinstance(ev, E.MessageAccepted):
            tr = tx.get(ev.conn)
            if tr:
                tr.accepted.append(ev.msg)
    return list(tx.values())
