"""The simulated disk: the part of a simulated host that survives a crash.

A :class:`~mta.queue.store.MemoryStore` hands every durable group of
batches to its disk (:meth:`SimulatedDisk.commit`, one simulated fsync);
a simulated crash throws away the store with its pending batches, and the
restarted host's new store reads the same disk back
(:meth:`SimulatedDisk.recover`).  It implements the
:class:`mta.queue.store.Disk` protocol; ``mta`` never imports it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from mta.events import Event
from mta.queue.store import Batch, Recovered


@dataclass
class SimulatedDisk:
    """Queue events per message, bodies and the queue-ID high mark, on "disk"."""

    events: dict[str, list[Event]] = field(default_factory=dict)   # per message, in order
    order: dict[str, int] = field(default_factory=dict)            # message -> first batch seq
    bodies: dict[str, bytes] = field(default_factory=dict)
    id_high: int = 0
    batches: int = 0          # how many durable batches (fsyncs) were written
    seq: int = 0              # next arrival number for a message's first event

    def commit(self, batches: list[Batch]) -> None:
        """Make ``batches`` durable, in order, as one fsync."""
        self.batches += 1
        for events, bodies, forget, id_high in batches:
            for e in events:
                msg = getattr(e, "msg", None)
                if msg is None:
                    continue
                if msg not in self.events:
                    self.events[msg] = []
                    self.order[msg] = self.seq
                    self.seq += 1
                self.events[msg].append(e)
            self.bodies.update(bodies)
            for msg in forget:
                self.events.pop(msg, None)
                self.order.pop(msg, None)
                self.bodies.pop(msg, None)
            self.id_high = max(self.id_high, id_high)

    def recover(self) -> Recovered:
        """Everything durable: messages in the order they first reached the
        disk, each message's events in order (a valid replay order, since
        events of different messages do not depend on each other)."""
        msgs = sorted(self.events, key=lambda m: self.order[m])
        events = [e for m in msgs for e in self.events[m]]
        return Recovered(events, dict(self.bodies), self.id_high)
