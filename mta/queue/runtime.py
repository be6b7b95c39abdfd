"""What a running queue holds in memory (and loses in a crash), and how it
records its events.

:class:`QueueRuntime` is shared, explicitly, by the queue manager and the
objects it is composed of (:class:`Journal`, :class:`mta.queue.rounds.Rounds`):
the folded state, the recipients claimed by running tasks, and the epoch
that a crash or a stop bumps so that tasks of an earlier life stop
touching anything.  :class:`Timers` keeps the one loop timer per message.

Every batch the queue produces goes through :meth:`Journal.record`: each
event is folded into the state and reported to the host's sink, then the
batch is written to the store (with the bodies of new messages, and the
finished messages the store may forget).  A message the batch creates (a
DSN) is scheduled only once the batch is durable, through ``on_durable``.
"""
from __future__ import annotations

import asyncio
from typing import Any, Callable

from mta import events as ev
from mta.context import HostContext
from mta.queue.scheduling import Claims
from mta.queue.state import QueueState
from mta.queue.store import QueueStore


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
        """The task holding these recipients has finished."""
        for r in rcpts:
            self.claimed.discard((msg, r))

    def holding(self, msg: str, rcpts: list[str],
                after: Callable[[str], None] | None = None) -> "Holding":
        """A context for a task that has claimed ``rcpts`` of ``msg``."""
        return Holding(self, msg, rcpts, after)


class Holding:
    """What every queue task does around its claimed recipients: it knows
    whether the queue it started in is still the current one (a crash or
    stop bumps the epoch), and when it ends it gives the recipients back and
    calls ``after(msg)`` (re-arm the message's timer) unless the queue has
    moved on, or the loop itself is gone (``GeneratorExit`` when a world is
    torn down: then nothing may be touched)."""

    def __init__(self, runtime: QueueRuntime, msg: str, rcpts: list[str],
                 after: Callable[[str], None] | None) -> None:
        self.runtime = runtime
        self.msg = msg
        self.rcpts = rcpts
        self.after = after
        self.epoch = runtime.epoch

    @property
    def current(self) -> bool:
        """Is the queue this task started in still the running one?"""
        return self.epoch == self.runtime.epoch

    def __enter__(self) -> "Holding":
        return self

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        if kind is not GeneratorExit and self.current:
            self.runtime.unclaim(self.msg, self.rcpts)
            if self.after is not None:
                self.after(self.msg)
        return False


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
        """Cancel the timer of ``msg``, if it has one."""
        old = self._handles.pop(msg, None)
        if old is not None:
            old.cancel()

    def fired(self, msg: str) -> None:
        """Forget the timer of ``msg`` that has just fired."""
        self._handles.pop(msg, None)

    def cancel_all(self) -> None:
        """Cancel every timer (crash or stop)."""
        for h in self._handles.values():
            h.cancel()
        self._handles.clear()


def id_number(msg: str) -> int:
    """The number of a queue ID (``host/m12`` -> 12; 0 if it has none)."""
    tail = msg.rpartition("/")[2].lstrip("m")
    return int(tail) if tail.isdigit() else 0


class Journal:
    """Folds, reports and writes the batches of one queue."""

    def __init__(self, ctx: HostContext, store: QueueStore, runtime: QueueRuntime, timers: Timers,
                 on_durable: Callable[[str], None]) -> None:
        self.ctx = ctx
        self.store = store
        self.runtime = runtime
        self.timers = timers
        self.on_durable = on_durable

    def apply(self, events: list[ev.Event]) -> None:
        """Fold and report ``events`` (not stored)."""
        state = self.runtime.state
        for e in events:
            state.apply(e)
            self.ctx.sink.emit(e)

    def emit(self, events: list[ev.Event]) -> None:
        """Report ``events`` only (host events the queue state does not fold)."""
        for e in events:
            self.ctx.sink.emit(e)

    def record(self, events: list[ev.Event], bodies: dict[str, bytes] | None = None) -> asyncio.Future:
        """Fold, report and write ``events`` as one batch; the future says when it is durable."""
        self.apply(events)
        state = self.runtime.state
        forget = tuple(state.finished)
        state.finished.clear()
        high = max((id_number(e.msg) for e in events if isinstance(e, ev.MessageSubmitted)), default=0)
        fut = self.store.write(events, bodies, forget=forget, id_high=high)
        for msg in forget:
            self.timers.cancel(msg)
        new = [e.msg for e in events if isinstance(e, ev.MessageSubmitted)]
        if new:
            # A DSN goes out only once the batch that creates it (with the
            # bounce it reports) is durable: a crash before that brings the
            # original recipients back, and they must not have been bounced.
            epoch = self.runtime.epoch

            def durable(f: asyncio.Future) -> None:
                # (A failed write is the awaiter's to report; the state says
                # bounced already, so the DSN still goes out.)
                if f.cancelled() or epoch != self.runtime.epoch:
                    return
                for msg in new:
                    self.on_durable(msg)

            if fut.done():
                durable(fut)
            else:
                fut.add_done_callback(durable)
        return fut

    async def commit(self, events: list[ev.Event], bodies: dict[str, bytes] | None = None) -> None:
        """:meth:`record` and wait until durable (nothing to do for no events)."""
        if events:
            await self.record(events, bodies)
