"""The evidence model: one event log and every projection judged from it.

:class:`Evidence` wraps a log and computes each shared projection (recipient
lifecycles, end-to-end outcomes, counts, run bounds, link periods, replies
and attempts by host, queue stays) once, on first use.  Every check and
every report section reads the same instance, so judging a run costs one
pass per projection however many checks and sections ask for it.

The projections are folds of the log alone: they rebuild queue state from
the events instead of reusing the queue's own fold (:mod:`mta.queue.state`),
because an oracle must not share code with the system it judges.
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from functools import cached_property
from typing import Iterable, TypeVar

from mta import events as E
from sim.events import GuaranteeExpected, RunStarted, ScenarioDescribed
from sim.evidence.lifecycle import (
    TERMINAL, Counts, Outcome, RecipientLife, count_outcomes, in_domain, lifecycles, outcomes)
from sim.evidence.links import LinkPeriod, link_periods, run_bounds

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


def within(t: float, periods: Iterable[tuple[float, float]]) -> bool:
    """``t`` falls in one of the half-open ``(start, end)`` periods."""
    return any(a <= t < b for a, b in periods)


class Evidence:
    """An event log and its projections, each computed once, lazily.

    ``events`` is the log in log order; nothing here changes it.  The
    attributes are read-only projections: do not mutate what they return.
    """

    def __init__(self, events: Iterable[E.Event]) -> None:
        self.events: list[E.Event] = list(events)

    # -- the log by kind --------------------------------------------------------

    @cached_property
    def _by_kind(self) -> dict[type, list[E.Event]]:
        out: dict[type, list[E.Event]] = {}
        for e in self.events:
            out.setdefault(type(e), []).append(e)
        return out

    def of(self, kind: type[Ev]) -> list[Ev]:
        """Every event of one kind, in log order."""
        return self._by_kind.get(kind, [])  # type: ignore[return-value]

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
        return run_bounds(self.events)

    @property
    def end(self) -> float:
        return self.bounds[1]

    # -- mail -------------------------------------------------------------------

    @cached_property
    def lifecycles(self) -> list[RecipientLife]:
        """Per (host, msg, rcpt), acceptance to fate (:func:`~sim.evidence.lifecycle.lifecycles`)."""
        return lifecycles(self.events)

    @cached_property
    def outcomes(self) -> list[Outcome]:
        """Per (trace, rcpt), the end-to-end fate, DSNs included and flagged."""
        return outcomes(self.events, self.lifecycles)

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
        return link_periods(self.events)

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
        for ev in self.events:
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
