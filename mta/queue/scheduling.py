"""Queue scheduling: retry timers, expiry of held mail, delay warnings.

:class:`SchedulingMixin` is the timer half of
:class:`mta.queue.manager.QueueManager`: it computes when each message is
next due (a retry, the expiry of held mail, a delay warning), keeps one
``loop.call_at`` timer per message, and on firing starts delivery rounds
(``_start``), expiries (``_expire``) and warnings.  Timers are set on
``loop.time()`` as "this many seconds from now", so a live restart (a new
monotonic clock) keeps the schedule; every time kept in the state is
``ctx.now()``.
"""
from __future__ import annotations

import asyncio
from typing import Any

from mta.delivery.dsn import ACTION_DELAYED, RecipientStatus
from mta.queue.bounces import dsn_events
from mta.queue.state import MessageState, RcptState


class SchedulingMixin:
    """When each message is due, and what happens when its timer fires
    (state, policy, timers and the busy set live on the QueueManager)."""

    # schedules
    def schedule_for(self, domain: str) -> Any:
        """The retry schedule for ``domain`` (see :class:`QueuePolicy`)."""
        return self.policy.schedule_for(domain)

    def _expires(self, m: MessageState, r: RcptState) -> float:
        return m.queued_at + self.schedule_for(r.domain).lifetime

    def _warn_at(self, m: MessageState) -> float | None:
        if not self.config.delay_warnings or m.warned or m.mail_from == "" or m.origin == "dsn":
            return None
        times = [getattr(self.schedule_for(r.domain), "delay_warning", None) for r in m.rcpts.values()]
        times = [t for t in times if t]
        return m.queued_at + min(times) if times else None

    def _due(self, m: MessageState) -> float | None:
        due: list[float] = []
        for r in m.rcpts.values():
            if (m.msg, r.rcpt) in self._busy:
                continue
            if r.in_flight:              # interrupted by a crash: retry at once
                due.append(self.ctx.now())
            elif r.held:
                due.append(self._expires(m, r))
            else:
                due.append(r.next_attempt)
        w = self._warn_at(m)
        if w is not None and due and any(r.held or r.failures > 0 for r in m.rcpts.values()):
            due.append(w)
        return min(due) if due else None

    def _schedule(self, msg: str) -> None:
        old = self._timers.pop(msg, None)
        if old is not None:
            old.cancel()
        m = self.state.messages.get(msg)
        if m is None:
            return
        due = self._due(m)
        if due is None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, due - self.ctx.now())
        self._timers[msg] = loop.call_at(loop.time() + delay, self._fire, msg)

    def _fire(self, msg: str) -> None:
        self._timers.pop(msg, None)
        m = self.state.messages.get(msg)
        if m is None:
            return
        now = self.ctx.now()
        due: list[RcptState] = []
        expired: list[RcptState] = []
        for r in m.rcpts.values():
            if (m.msg, r.rcpt) in self._busy:
                continue
            if r.in_flight or (not r.held and r.next_attempt <= now):
                due.append(r)
            elif r.held and now >= self._expires(m, r):
                expired.append(r)
        w = self._warn_at(m)
        if w is not None and now >= w:
            waiting = [r for r in m.rcpts.values() if r.held or r.failures > 0]
            if waiting:
                # Synchronously, so the warning is folded (m.warned) before
                # the next timer is computed below.
                self._warn(m, waiting)
        if expired:
            for r in expired:
                self._busy.add((m.msg, r.rcpt))
            self._spawn(self._expire(m, expired))
        if due:
            self._start(m, due)
        self._schedule(msg)

    # ------------------------------------------------------------------
    # delay warnings (built by mta.queue.bounces)
    def _warn(self, m: MessageState, waiting: list[RcptState]) -> None:
        now = self.ctx.now()
        statuses = [RecipientStatus(r.rcpt, r.last_code or 421,
                                    r.last_text or "4.4.7 Delivery delayed", r.last_dest)
                    for r in waiting]
        until = min(self._expires(m, r) for r in waiting)
        events, bodies, _ = dsn_events(self.ctx, m, ACTION_DELAYED, statuses, self.store.body(m.msg),
                                       now, self._queued_events, retry_until=until)
        self._record(events, bodies)
