"""What is due in a queue at time t: pure functions over the queue state.

The manager keeps one loop timer per message; these functions say when it
should fire (:func:`next_due`) and, when it fires, what is due then
(:func:`due_now`): which recipients to try, which held ones expire, and
which are waiting long enough for the one delay warning a message gets.
They read the state and the policy and change nothing; arming the timer
and acting on the answer is the manager's I/O.

Times are event times (``ctx.now()``), like every time kept in the state.
"""
from __future__ import annotations

from dataclasses import dataclass

from mta.queue.policy import QueuePolicy
from mta.queue.state import MessageState, RcptState

#: (message, recipient) pairs a running task has claimed: never due twice.
Claims = set[tuple[str, str]]


def expires_at(m: MessageState, r: RcptState, policy: QueuePolicy) -> float:
    """When ``r`` of ``m`` has been queued for its schedule's lifetime."""
    return m.queued_at + policy.schedule_for(r.domain).lifetime


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
