"""What a running queue holds in memory, and loses in a crash.

:class:`QueueRuntime` is shared, explicitly, by the queue manager and the
objects it is composed of (:class:`mta.queue.journal.Journal`,
:class:`mta.queue.rounds.Rounds`): the folded state, the recipients claimed
by running tasks, and the epoch that a crash or a stop bumps so that tasks
of an earlier life stop touching anything.  :class:`Timers` keeps the one
loop timer per message.
"""
from __future__ import annotations

import asyncio
from typing import Callable

from mta.queue.scheduling import Claims
from mta.queue.state import QueueState


class QueueRuntime:
    """The in-memory part of one queue: state, claims, epoch."""

    def __init__(self) -> None:
        self.state = QueueState()
        self.claimed: Claims = set()
        self.epoch = 0

    def claim(self, msg: str, rcpts: list[str]) -> None:
        """Mark recipients as held by a running task (never due meanwhile)."""
        for r in rcpts:
            self.claimed.add((msg, r))

    def unclaim(self, msg: str, rcpts: list[str]) -> None:
        for r in rcpts:
            self.claimed.discard((msg, r))


class Timers:
    """One loop timer per message, set as "this many seconds from now" (so a
    live restart, with a new monotonic clock, keeps the schedule)."""

    def __init__(self) -> None:
        self._handles: dict[str, asyncio.TimerHandle] = {}

    def arm(self, msg: str, delay: float, fire: Callable[[str], None]) -> None:
        """Call ``fire(msg)`` after ``delay`` seconds (the caller cancelled any old one)."""
        loop = asyncio.get_running_loop()
        self._handles[msg] = loop.call_at(loop.time() + delay, fire, msg)

    def cancel(self, msg: str) -> None:
        old = self._handles.pop(msg, None)
        if old is not None:
            old.cancel()

    def fired(self, msg: str) -> None:
        """Forget the timer of ``msg`` that has just fired."""
        self._handles.pop(msg, None)

    def cancel_all(self) -> None:
        for h in self._handles.values():
            h.cancel()
        self._handles.clear()
