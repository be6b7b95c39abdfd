"""Queue contents over time, folded from an event log.

* :func:`replay`: every host's queue and every link's state at time t;
* :func:`queue_depths`: per host, the queue-depth step function;
* :func:`queue_intervals`: one row per queue stay (pandas).

Time convention: an event stamped exactly ``t`` has happened "at t", so
``replay(events, t)`` includes it.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from mta import events as E
from sim.events import LinkDown, LinkUp
from sim.evidence.lifecycle import TERMINAL


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
        if isinstance(ev, (LinkUp, LinkDown)):
            first_link.setdefault((ev.host, ev.link), "down" if isinstance(ev, LinkUp) else "up")
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
        elif isinstance(ev, LinkUp):
            links[(ev.host, ev.link)] = "up"
        elif isinstance(ev, LinkDown):
            links[(ev.host, ev.link)] = "down"
    for k, first in first_link.items():
        links.setdefault(k, first)
    out_q = {h: sorted(q.values(), key=lambda e: (e.since, e.msg, e.rcpt))
             for h, q in sorted(queues.items()) if q}
    return ReplayState(t=float(t), queues=out_q, links=dict(sorted(links.items())))


def queue_depths(events: list[E.Event]) -> dict[str, list[tuple[float, int]]]:
    """Per host, the step function of queue depth: [(t, depth after t)].

    Only Queued and the events that take a copy out of a queue (``TERMINAL``)
    are read: given only those, in log order, the steps are the same.
    """
    present: dict[str, set[tuple[str, str]]] = {}
    steps: dict[str, list[tuple[float, int]]] = {}
    queued = E.Queued
    for ev in events:
        if ev.__class__ is queued or isinstance(ev, queued):
            entering = True
        elif isinstance(ev, TERMINAL):
            entering = False
        else:
            continue
        host = ev.host
        here = present.get(host)
        if here is None:
            here = present[host] = set()
        k = (ev.msg, ev.rcpt)
        if entering:
            if k in here:
                continue
            here.add(k)
        else:
            if k not in here:
                continue
            here.discard(k)
        s = steps.get(host)
        if s is None:
            s = steps[host] = []
        t = float(ev.t)
        if s and s[-1][0] == t:
            s[-1] = (t, len(here))
        else:
            s.append((t, len(here)))
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

