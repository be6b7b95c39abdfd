"""What is due in a queue at time t, and when a deferred recipient is retried.

The manager keeps one loop timer per message; these functions say when it
should fire (:func:`next_due`) and, when it fires, what is due then
(:func:`due_now`): which recipients to try, which held ones expire, and
which are waiting long enough for the one delay warning a message gets.
After a deferral :func:`retry_at` says when the recipient is tried again.
They read the state and the policy and change nothing, except the Exim
retry records of ``policy.hints`` that :func:`host_gate`, :func:`answered`
and :func:`retry_at` keep (Exim's hints database); arming the timer and
acting on the answer is the manager's I/O.

Times are event times (``ctx.now()``), like every time kept in the state.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from mta.delivery.client import RcptOutcome
from mta.queue.policy import QueuePolicy
from mta.queue.state import MessageState, RcptState
from mta.retry.base import queue_run_at_or_after

#: (message, recipient) pairs a running task has claimed: never due twice.
Claims = set[tuple[str, str]]


def expires_at(m: MessageState, r: RcptState, policy: QueuePolicy) -> float:
    """When ``r`` of ``m`` has been queued for its schedule's lifetime."""
    return m.queued_at + policy.schedule_of(r.domain, m.mail_from).lifetime


# -- retries -----------------------------------------------------------------------
# A schedule with ``per_host`` (Exim) keeps one retry record per destination
# in ``policy.hints``: host errors write it, an answer from the destination
# clears it, and it gates every round to that destination.

#: What a round waiting for its destination's retry time reports, in Exim's words.
RETRY_TIME_NOT_REACHED = (451, "4.4.0 retry time not reached for any host")
#: What a round to a destination failing past its final cutoff reports.
FAILING_TOO_LONG = (550, "5.4.0 all hosts have been failing for a long time "
                         "(and retry time not reached)")


def _per_host(schedule: object) -> bool:
    return bool(getattr(schedule, "per_host", False))


def _host_error(o: RcptOutcome) -> bool:
    """No connection, or a 421 (Exim's host errors; a 4xx to RCPT is not one)."""
    return bool(o.dest_host) and o.code == 421


def host_gate(m: MessageState, domain: str, policy: QueuePolicy, now: float
              ) -> tuple[int, str] | None:
    """Before a round of ``m`` to ``domain`` at ``now``: None to try it, or
    the (code, text) every recipient gets without an attempt (Exim's
    ``retry_check_address``: :data:`RETRY_TIME_NOT_REACHED` or
    :data:`FAILING_TOO_LONG`)."""
    if not _per_host(policy.schedule_of(domain, m.mail_from)):
        return None
    verdict, _ = policy.hints.check(domain, now, m.queued_at, m.msg)
    if verdict == "try":
        policy.hints.trying(domain, policy.schedule_of(domain, m.mail_from))
        return None
    return RETRY_TIME_NOT_REACHED if verdict == "wait" else FAILING_TOO_LONG


def frozen_until(m: MessageState, r: RcptState, policy: QueuePolicy, now: float) -> float | None:
    """When a bounce (a message from ``<>``) that failed permanently at
    ``now`` is tried once more, or None: given up (Exim freezes such
    bounces until ``ignore_bounce_errors_after``; others give them up)."""
    thawed = getattr(policy.schedule_of(r.domain, m.mail_from), "thawed", None)
    return thawed(m.queued_at, now) if thawed is not None and not m.mail_from else None


def answered(m: MessageState, r: RcptState, o: RcptOutcome, policy: QueuePolicy) -> None:
    """Note an outcome that came from the destination itself (Exim forgets
    a host that answered)."""
    if o.dest_host and not _host_error(o) and _per_host(policy.schedule_of(r.domain, m.mail_from)):
        policy.hints.answered(r.domain, m.queued_at, m.msg)


def _next_visit(s, due: float, queued_at: float, now: float) -> float:
    """When a message waiting for its destination is looked at again.  A
    queue runner visits every message in every run (each run it is not
    tried, Exim logs "retry time not reached"), so: the next run.  Without
    one (``queue_interval`` 0): the destination's retry time ``due``, or
    the moment the message grows older than the final cutoff, if sooner."""
    if s.queue_interval > 0:
        run = queue_run_at_or_after(now, s.queue_interval, s.queue_phase)
        return run if run > now else run + s.queue_interval
    return max(min(due, s.ultimate_timeout(queued_at)), math.nextafter(now, math.inf))


def retry_at(m: MessageState, r: RcptState, o: RcptOutcome, policy: QueuePolicy,
             now: float) -> float | None:
    """When ``r`` of ``m``, deferred at ``now`` with outcome ``o``, is tried
    again, or None: given up.  Per-message schedules answer
    ``next_attempt``; a per-host one answers from the destination's record
    after a host error or a round it held back (:func:`_next_visit`)."""
    s = policy.schedule_of(r.domain, m.mail_from)
    if _per_host(s):
        if _host_error(o):
            due = policy.hints.failed(r.domain, s, now, m.queued_at, m.msg)
            if due is None:
                return None
            return _next_visit(s, due, m.queued_at, now)
        if (o.code, o.text) == RETRY_TIME_NOT_REACHED:
            _, due = policy.hints.check(r.domain, now, m.queued_at, m.msg)
            return _next_visit(s, due, m.queued_at, now)
        answered(m, r, o, policy)
    first = r.first_failure if r.first_failure is not None else now
    return s.next_attempt(m.queued_at, first, now, r.failures + 1)


def warn_at(m: MessageState, policy: QueuePolicy) -> float | None:
    """When ``m`` gets its delay warning, or None: never for a message from
    ``<>`` or a DSN, never twice, only if a recipient's schedule has one."""
    if not policy.config.delay_warnings or m.warned or m.mail_from == "" or m.origin == "dsn":
        return None
    times = [getattr(policy.schedule_for(r.domain), "delay_warning", None) for r in m.rcpts.values()]
    times = [t for t in times if t]
    return m.queued_at + min(times) if times else None


def _waiting(m: MessageState) -> list[RcptState]:
    """Recipients a delay warning is about: held, or deferred at least once."""
    return [r for r in m.rcpts.values() if r.held or r.failures > 0]


def next_due(m: MessageState, now: float, claimed: Claims, policy: QueuePolicy) -> float | None:
    """When something about ``m`` is next due (None: nothing until a task
    that holds its recipients finishes).  An attempt a crash interrupted
    is due at once; a held recipient only at its expiry."""
    due: list[float] = []
    for r in m.rcpts.values():
        if (m.msg, r.rcpt) in claimed:
            continue
        if r.in_flight:
            due.append(now)
        elif r.held:
            due.append(expires_at(m, r, policy))
        else:
            due.append(r.next_attempt)
    w = warn_at(m, policy)
    if w is not None and due and any(r.held or r.failures > 0 for r in m.rcpts.values()):
        due.append(w)
    return min(due) if due else None


@dataclass(frozen=True)
class Due:
    """What is due about one message now."""

    attempt: list[RcptState]      # try these (due retries, interrupted attempts)
    expire: list[RcptState]       # held past their lifetime: bounce them
    warn: list[RcptState]         # send the delay warning about these (empty: none)


def due_now(m: MessageState, now: float, claimed: Claims, policy: QueuePolicy) -> Due:
    """What is due about ``m`` at ``now`` (recipients ``claimed`` by a task are left alone)."""
    attempt: list[RcptState] = []
    expire: list[RcptState] = []
    for r in m.rcpts.values():
        if (m.msg, r.rcpt) in claimed:
            continue
        if r.in_flight or (not r.held and r.next_attempt <= now):
            attempt.append(r)
        elif r.held and now >= expires_at(m, r, policy):
            expire.append(r)
    w = warn_at(m, policy)
    warn = _waiting(m) if w is not None and now >= w else []
    return Due(attempt, expire, warn)
