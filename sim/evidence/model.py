"""The evidence model: one event log and every projection judged from it.

:class:`Evidence` reads the log once, indexing it by kind (each kind's
events and their log positions); every shared projection (recipient
lifecycles, end-to-end outcomes, counts, run bounds, link periods, replies
and attempts by host, queue stays, queue depths) is then computed once, on
first use, from the kinds it needs, merged back into log order where order
across kinds matters (:meth:`Evidence.in_order`).  Every check and every
report section reads the same instance and no check walks the raw log, so
judging a run costs one pass over the log plus one per projection over its
own kinds, however many checks and sections ask for it.

The projections are folds of the log alone: they rebuild queue state from
the events instead of reusing the queue's own fold (:mod:`mta.queue.state`),
because an oracle must not share code with the system it judges.
"""
from __future__ import annotations

import gc
from array import array
from contextlib import contextmanager
from bisect import bisect_right
from dataclasses import dataclass
from functools import cached_property
from operator import attrgetter
from typing import Iterable, Iterator, TypeVar

from mta import events as E
from sim.events import GuaranteeExpected, LinkDown, LinkUp, RunEnded, RunStarted, ScenarioDescribed
from sim.evidence.lifecycle import (
    RUN_KINDS, TERMINAL, Counts, Outcome, RecipientLife, copy_kind, count_outcomes, in_domain,
    lifecycles, outcomes)
from sim.evidence.links import LinkPeriod, link_periods, run_bounds
from sim.evidence.queue_replay import queue_depths

Ev = TypeVar("Ev", bound=E.Event)


@dataclass(frozen=True)
class QueueStay:
    """One recipient's stay in one host's queue, from its first Queued
    event to the event that took it out (``leave`` None: still queued)."""

    host: str
    msg: str
    trace: str
    rcpt: str
    domain: str
    enter: float
    leave: float | None


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of a non-empty list."""
    v = sorted(values)
    if len(v) == 1:
        return v[0]
    pos = (len(v) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run the block with Python's cycle collector off (as it was after).

    Judging allocates a few objects per copy (lifecycles, outcomes, index
    lists) next to a log of millions of long-lived events; with the
    collector on, the collections those allocations trigger walk the log
    again and again, which cost two thirds of the lifecycle fold on the
    100-domain ISP world.  The projections make no reference cycles, and
    what the block leaves is collected once the collector is back on.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def within(t: float, periods: Iterable[tuple[float, float]]) -> bool:
    """``t`` falls in one of the half-open ``(start, end)`` periods."""
    return any(a <= t < b for a, b in periods)


class LoggedHosts:
    """``host in hosts``: did ``host`` log one of these events (given by
    their positions in ``events``, a list per kind)?

    The lifecycle fold asks this of each relay's next hop, a handful of
    hosts; the set of every host in the log would cost a look at every
    event.  Each kind's hosts are gathered when a question first needs
    them, in order, so a host that logs early kinds is found after a few.
    """

    def __init__(self, events: list[E.Event], kinds: list[array]) -> None:
        self._events = events
        self._todo = kinds[::-1]            # popped from the end: log order of kinds
        self._seen: set[str] = set()

    def __contains__(self, host: object) -> bool:
        while host not in self._seen and self._todo:
            # Read through the kind's positions: no list of the kind is kept.
            self._seen.update(map(attrgetter("host"),
                                  map(self._events.__getitem__, self._todo.pop())))
        return host in self._seen


class Evidence:
    """An event log and its projections, each computed once, lazily.

    ``events`` is the log in log order; a list is held as given, not
    copied (a week's log is millions of events), and nothing here changes
    it.  The attributes are read-only projections: do not mutate what they
    return.
    """

    def __init__(self, events: Iterable[E.Event]) -> None:
        self.events: list[E.Event] = events if isinstance(events, list) else list(events)
        # The one pass over the raw log: per kind, the log positions of its
        # events (4 bytes each; a kind's own list is made from them when a
        # check or section first asks for that kind, and most kinds of a
        # run, SMTP replies first, are never asked for).  The copy events
        # (what the lifecycle fold reads) are gathered in the same pass
        # rather than merged back from their kinds afterwards.
        self._positions: dict[type, array] = {}
        copies: list[E.Event] = []
        add_copy = copies.append
        add: dict[type, tuple] = {}            # kind -> (its positions' append, copy kind)
        get = add.get
        for i, e in enumerate(self.events):
            slot = get(e.__class__)
            if slot is None:
                pos = self._positions[e.__class__] = array("I")
                slot = add[e.__class__] = (pos.append, copy_kind(e.__class__))
            slot[0](i)
            if slot[1]:
                add_copy(e)
        self._of: dict[type, list[E.Event]] = {}
        self.copy_events: list[E.Event] = copies
        """The events about recipient copies (acceptances, queueing,
        attempts, deferrals, fates, DSNs), in log order: what the lifecycle
        fold reads (:func:`~sim.evidence.lifecycle.copy_kind`)."""

    # -- the log by kind --------------------------------------------------------

    def of(self, kind: type[Ev]) -> list[Ev]:
        """Every event of one kind, in log order."""
        found = self._of.get(kind)
        if found is None:
            pos = self._positions.get(kind)
            if pos is None:
                return []
            found = self._of[kind] = list(map(self.events.__getitem__, pos))
        return found  # type: ignore[return-value]

    def kinds(self) -> list[type]:
        """The kinds present in the log, in order of first appearance."""
        return list(self._positions)

    def in_order(self, *kinds: type) -> list[E.Event]:
        """Every event of the given kinds, in log order (one merge of their
        position lists, not a walk of the log)."""
        found = [self._positions[k] for k in dict.fromkeys(kinds) if k in self._positions]
        if not found:
            return []
        if len(found) == 1:
            return list(map(self.events.__getitem__, found[0]))
        positions = sorted(i for pos in found for i in pos)
        return list(map(self.events.__getitem__, positions))

    @cached_property
    def hosts(self) -> "LoggedHosts":
        """The hosts that logged something other than run events (the
        runner aside), as :func:`~sim.evidence.lifecycle.hosts_in_log`
        finds them; a container asked host by host (``host in hosts``)."""
        return LoggedHosts(self.events, [pos for kind, pos in self._positions.items()
                                         if not issubclass(kind, RUN_KINDS)])

    # -- run ----------------------------------------------------------------------

    @cached_property
    def started(self) -> RunStarted | None:
        """The run's RunStarted event, if the log has one."""
        runs = self.of(RunStarted)
        return runs[0] if runs else None

    @cached_property
    def described(self) -> ScenarioDescribed | None:
        """What the scenario said of itself and its world (None in logs
        written before runs recorded it, or not by a run)."""
        found = self.of(ScenarioDescribed)
        return found[0] if found else None

    @cached_property
    def expectations(self) -> list[GuaranteeExpected]:
        """The GuaranteeExpected events: what this run is judged on."""
        return self.of(GuaranteeExpected)

    @cached_property
    def bounds(self) -> tuple[float, float]:
        """(start, end) of the run (see :func:`~sim.evidence.links.run_bounds`)."""
        if self.of(RunStarted) and self.of(RunEnded):
            # What run_bounds finds, without the scan of every stamp it needs
            # only when a bound is missing.
            return float(self.of(RunStarted)[0].t), float(self.of(RunEnded)[-1].t)
        return run_bounds(self.events)

    @property
    def end(self) -> float:
        return self.bounds[1]

    # -- mail -------------------------------------------------------------------

    @cached_property
    def lifecycles(self) -> list[RecipientLife]:
        """Per (host, msg, rcpt), acceptance to fate (:func:`~sim.evidence.lifecycle.lifecycles`)."""
        return lifecycles(self.copy_events, hosts=self.hosts)

    @cached_property
    def outcomes(self) -> list[Outcome]:
        """Per (trace, rcpt), the end-to-end fate, DSNs included and flagged."""
        return outcomes(self.in_order(E.DsnCreated, E.DeliveredToMailbox), self.lifecycles)

    @cached_property
    def mail_outcomes(self) -> list[Outcome]:
        """The outcomes of mail, DSNs left out: what the counts are over."""
        return [o for o in self.outcomes if not o.is_dsn]

    @cached_property
    def counts(self) -> Counts:
        """The verdict's per-recipient counts."""
        return count_outcomes(self.mail_outcomes, dsns=len(self.of(E.DsnCreated)))

    @cached_property
    def latencies(self) -> list[float]:
        """Acceptance-to-mailbox latency of every delivered recipient (not DSNs)."""
        return [o.latency for o in self.mail_outcomes if o.latency is not None]

    def lives_on(self, host: str) -> list[RecipientLife]:
        """The lifecycles of the copies ``host`` took."""
        return self._lives_by_host.get(host, [])

    def lives_of(self, trace: str) -> list[RecipientLife]:
        """The lifecycles of the copies of one message (by trace), in the
        order of :attr:`lifecycles`."""
        return self._lives_by_trace.get(trace, [])

    @cached_property
    def _lives_by_trace(self) -> dict[str, list[RecipientLife]]:
        out: dict[str, list[RecipientLife]] = {}
        for lf in self.lifecycles:
            out.setdefault(lf.trace, []).append(lf)
        return out

    @cached_property
    def _lives_by_host(self) -> dict[str, list[RecipientLife]]:
        out: dict[str, list[RecipientLife]] = {}
        for lf in self.lifecycles:
            out.setdefault(lf.host, []).append(lf)
        return out

    @cached_property
    def releases(self) -> dict[str, list[float]]:
        """Host -> times of its Released events (ETRN, finger, probe)."""
        out: dict[str, list[float]] = {}
        for e in self.of(E.Released):
            out.setdefault(e.host, []).append(float(e.t))
        return out

    # -- links -------------------------------------------------------------------

    @cached_property
    def link_periods(self) -> list[LinkPeriod]:
        """Each link's up/down periods covering the whole run."""
        return link_periods(self.in_order(LinkUp, LinkDown), bounds=self.bounds)

    def down_periods(self, host: str) -> list[tuple[float, float]]:
        """(start, end) of every period when a link of ``host`` was down."""
        return [(p.start, p.end) for p in self.link_periods
                if p.host == host and p.state == "down"]

    # -- SMTP ----------------------------------------------------------------------

    def replies_by_conn(self, host: str) -> dict[str, list[E.SmtpReply]]:
        """Connection id -> the SmtpReply events of ``host`` on it, in log order."""
        return self._replies.get(host, {})

    @cached_property
    def _replies(self) -> dict[str, dict[str, list[E.SmtpReply]]]:
        out: dict[str, dict[str, list[E.SmtpReply]]] = {}
        for e in self.of(E.SmtpReply):
            out.setdefault(e.host, {}).setdefault(e.conn, []).append(e)
        return out

    def attempts_of(self, host: str) -> dict[tuple[str, str], list[float]]:
        """(msg, rcpt) -> times of the AttemptStarted events of ``host``."""
        return self._attempts.get(host, {})

    @cached_property
    def _attempts(self) -> dict[str, dict[tuple[str, str], list[float]]]:
        out: dict[str, dict[tuple[str, str], list[float]]] = {}
        for e in self.of(E.AttemptStarted):
            for r in e.rcpts:
                out.setdefault(e.host, {}).setdefault((e.msg, r), []).append(float(e.t))
        return out

    # -- queues --------------------------------------------------------------------

    @cached_property
    def _stays(self) -> dict[str, tuple[list[float], list[QueueStay]]]:
        """Per host, its queue stays sorted by entry, with the entry times."""
        open_: dict[tuple[str, str, str], dict] = {}
        done: list[dict] = []
        for ev in self.copy_events:
            if isinstance(ev, E.Queued):
                k = (ev.host, ev.msg, ev.rcpt)
                if k not in open_:
                    open_[k] = {"host": ev.host, "msg": ev.msg, "trace": ev.trace,
                                "rcpt": ev.rcpt, "domain": ev.domain, "enter": float(ev.t),
                                "leave": None}
            elif isinstance(ev, TERMINAL):
                stay = open_.pop((ev.host, ev.msg, ev.rcpt), None)
                if stay is not None:
                    stay["leave"] = float(ev.t)
                    done.append(stay)
        by_host: dict[str, list[QueueStay]] = {}
        for s in done + list(open_.values()):
            by_host.setdefault(s["host"], []).append(QueueStay(**s))
        out = {}
        for host, stays in by_host.items():
            stays.sort(key=lambda s: (s.enter, s.msg, s.rcpt))
            out[host] = ([s.enter for s in stays], stays)
        return out

    @cached_property
    def queue_depths(self) -> dict[str, list[tuple[float, int]]]:
        """Per host, the queue-depth step function (:func:`~sim.evidence.queue_replay.queue_depths`)."""
        return queue_depths(self.in_order(E.Queued, *TERMINAL))

    def queued_at(self, host: str, t: float) -> list[QueueStay]:
        """What ``host`` held in its queue at time ``t`` (events stamped
        exactly ``t`` have happened), ordered by entry time, msg, rcpt: the
        same as ``replay(events, t).queues[host]`` for a log in time order."""
        enters, stays = self._stays.get(host, ([], []))
        return [s for s in stays[:bisect_right(enters, t)] if s.leave is None or s.leave > t]

    def held_copies(self, host: str, domain: str, t: float) -> list[QueueStay]:
        """Queue entries on ``host`` for ``domain`` (or a subdomain) at time ``t``."""
        return [s for s in self.queued_at(host, t)
                if in_domain("x@" + s.domain, domain) or in_domain(s.rcpt, domain)]
