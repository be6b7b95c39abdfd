"""Where a queue keeps its events and message bodies: the store interface
and the in-memory store in front of an injected disk.

A store persists queue events (the ones :mod:`mta.queue.state` folds) and
message bodies.  :meth:`QueueStore.write` enqueues a batch and returns a
future that resolves once the batch is durable: the queue awaits it before
acknowledging a message and before recording a transaction's outcomes.
``AttemptStarted`` is reported but never stored: after a crash an
interrupted attempt is due again, which replay gives without it.  A batch
is atomic: after a crash either all of it is on disk or none of it.

:class:`MemoryStore` is the simulation's store.  Its :class:`Disk` is
injected (the simulated world's :class:`sim.world.disk.SimulatedDisk`) and
outlives the queue manager: a simulated crash throws away the manager (its
state, timers, connections) and whatever batches were not yet durable, and
the restarted manager replays the disk.  An optional
``fsync_latency`` makes durability take simulated time, so concurrent
acceptances are committed in groups just as on a real disk.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Awaitable, Callable, Protocol

from mta.events import Event


class StoreCrashed(RuntimeError):
    """The host crashed before this batch was durable."""


def fail_pending(futures, why: str) -> None:
    """Fail the waiters of batches a crash threw away, so that nobody waits
    for ever (an SMTP session waiting to answer DATA then says 451 and the
    client keeps the message).  Marked as seen: a batch nobody awaited is
    no error of its own."""
    for fut in futures:
        if not fut.done():
            fut.set_exception(StoreCrashed(why))
            fut.exception()


class PendingBatches:
    """Batches written but not yet durable, and the task that flushes them
    (group commit: batches that arrive during a flush share the next one).
    Each batch is a tuple whose last item is its waiter's future."""

    def __init__(self, flush: Callable[[], Awaitable[None]]) -> None:
        self.items: list[tuple] = []
        self._flush = flush
        self._task: asyncio.Task | None = None

    def add(self, item: tuple) -> None:
        """Queue ``item``; start a flush unless one is running."""
        self.items.append(item)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flush())

    def take(self) -> list[tuple]:
        """Everything queued so far, for one flush."""
        items, self.items = self.items, []
        return items

    def abandon(self, why: str) -> None:
        """Stop the flush and fail every batch not written yet (crash or stop)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        fail_pending([item[-1] for item in self.take()], why)


@dataclass
class Recovered:
    """What a store hands back at start: events in commit order, the bodies
    of messages still queued, and the highest queue-ID number ever issued."""

    events: list[Event]
    bodies: dict[str, bytes]
    id_high: int = 0


class QueueStore(Protocol):
    """What the queue manager needs from durable storage."""

    def write(self, events: list[Event], bodies: dict[str, bytes] | None = None,
              forget: tuple[str, ...] = (), id_high: int = 0) -> asyncio.Future:
        """Enqueue one atomic batch; the future resolves when it is durable.

        ``forget`` names messages that are finished: their events and body
        may be dropped in the same batch.  ``id_high`` is the highest queue
        ID number issued so far (so IDs are not reused after a restart).
        """
        ...

    def load(self) -> Recovered:
        """Everything durable, for replay at start."""
        ...

    def body(self, msg: str) -> bytes:
        """The stored body of a queued message (KeyError if unknown)."""
        ...

    def crash(self) -> None:
        """Forget every batch that is not yet durable (simulated crash)."""
        ...

    def close(self) -> None:
        ...


#: One batch as a disk receives it: (events, bodies, forget, id_high).
Batch = tuple[list[Event], dict[str, bytes], tuple[str, ...], int]


class Disk(Protocol):
    """Where a :class:`MemoryStore` puts durable batches: what survives a
    crash (the simulation's is :class:`sim.world.disk.SimulatedDisk`)."""

    def commit(self, batches: list[Batch]) -> None:
        """Make ``batches`` durable, in order, as one fsync."""
        ...

    def recover(self) -> Recovered:
        """Everything durable, in a valid replay order."""
        ...


class MemoryStore:
    """The in-memory store in front of an injected :class:`Disk`.

    With ``fsync_latency == 0`` every batch is durable as soon as it is
    written.  With a positive latency a batch becomes durable after that
    much (loop) time, and batches that arrive meanwhile share the next
    flush: group commit, one simulated fsync per group.
    """

    def __init__(self, disk: Disk, *, fsync_latency: float = 0.0) -> None:
        self.disk = disk
        self.fsync_latency = fsync_latency
        self._pending = PendingBatches(self._flush)
        # Bodies written but maybe not yet durable: a DSN may be delivered
        # before its batch reaches the disk.
        self._bodies: dict[str, bytes] = disk.recover().bodies

    def write(self, events: list[Event], bodies: dict[str, bytes] | None = None,
              forget: tuple[str, ...] = (), id_high: int = 0) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        item = (list(events), dict(bodies or {}), tuple(forget), id_high, fut)
        self._bodies.update(item[1])
        for m in forget:
            self._bodies.pop(m, None)
        if self.fsync_latency <= 0:
            self._apply([item])
            fut.set_result(None)
            return fut
        self._pending.add(item)
        return fut

    async def _flush(self) -> None:
        while self._pending.items:
            await asyncio.sleep(self.fsync_latency)
            batch = self._pending.take()
            self._apply(batch)
            for *_, fut in batch:
                if not fut.done():
                    fut.set_result(None)

    def _apply(self, batch: list) -> None:
        self.disk.commit([item[:4] for item in batch])

    def load(self) -> Recovered:
        return self.disk.recover()

    def body(self, msg: str) -> bytes:
        return self._bodies[msg]

    def crash(self) -> None:
        self._pending.abandon("crashed before the batch was durable")
        self._bodies = self.disk.recover().bodies

    def close(self) -> None:
        self.crash()
