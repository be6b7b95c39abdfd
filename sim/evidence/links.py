"""Links, the SMTP transaction log and run bounds, from an event log.

* :func:`run_bounds`: the run's (start, end);
* :func:`link_periods`: each link's up/down periods;
* :func:`smtp_transactions`: one entry per server-side connection.

Pure functions of the log; :class:`sim.evidence.model.Evidence` holds the
link periods of a run.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from mta import events as E
from sim.events import LinkDown, LinkUp, RunEnded, RunStarted


def run_bounds(events: list[E.Event]) -> tuple[float, float]:
    """(start, end) of the run: RunStarted/RunEnded, else first/last stamp."""
    start = next((e.t for e in events if isinstance(e, RunStarted)), None)
    end = next((e.t for e in reversed(events) if isinstance(e, RunEnded)), None)
    ts = [e.t for e in events]
    if start is None:
        start = min(ts) if ts else 0.0
    if end is None:
        end = max(ts) if ts else 0.0
    return float(start), float(end)


@dataclass
class LinkPeriod:
    host: str
    link: str
    state: str
    start: float
    end: float


def link_periods(events: list[E.Event],
                 bounds: tuple[float, float] | None = None) -> list[LinkPeriod]:
    """Each link's up/down periods covering the whole run (``bounds``: the
    run's, when ``events`` are only its link events)."""
    start, end = run_bounds(events) if bounds is None else bounds
    changes: dict[tuple[str, str], list[tuple[float, str]]] = defaultdict(list)
    for ev in events:
        if isinstance(ev, LinkUp):
            changes[(ev.host, ev.link)].append((float(ev.t), "up"))
        elif isinstance(ev, LinkDown):
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
