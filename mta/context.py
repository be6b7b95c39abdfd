"""What a component is given instead of reaching for globals.

A component never reads the wall clock, the global random state, the real
DNS or a logger of its own: it gets them from a :class:`HostContext`.  The
simulation builds one per simulated host; live runs build one with
:func:`live_context`.  This is what lets the same code run in both worlds.
"""
from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Callable

from mta.events.sinks import EventSink, MemorySink


@dataclass
class HostContext:
    """Everything a component on one host may use from its environment.

    ``hostname`` is the host's fully qualified name (used for banners, EHLO
    and Received headers; never looked up with ``socket.getfqdn``).
    ``clock`` gives the time stamped on events: simulated seconds in a
    simulated run, Unix time live.  Scheduling still uses ``loop.time()``.
    ``resolver`` is an :class:`mta.dns.resolver.Resolver`; ``rng`` is this host's own
    random source, derived from the run's seed.
    """

    hostname: str
    sink: EventSink = field(default_factory=MemorySink)
    resolver: object | None = None
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    clock: Callable[[], float] = field(default=None)  # type: ignore[assignment]
    _ids: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.clock is None:
            self.clock = lambda: asyncio.get_running_loop().time()

    def now(self) -> float:
        return self.clock()

    def next_id(self, prefix: str) -> str:
        """A run-unique ID such as ``mx1.example/m7`` (deterministic order)."""
        n = self._ids.get(prefix, 0) + 1
        self._ids[prefix] = n
        return f"{self.hostname}/{prefix}{n}"


def live_context(hostname: str, sink: EventSink, resolver: object | None = None,
                 seed: int | None = None) -> HostContext:
    """A context for real sockets: Unix time on events, OS-seeded randomness."""
    rng = random.Random(seed) if seed is not None else random.Random()
    return HostContext(hostname=hostname, sink=sink, resolver=resolver, rng=rng,
                       clock=time.time)
