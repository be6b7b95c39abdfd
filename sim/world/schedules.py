"""When a link is up: the schedules a scenario can give a host's link.

A schedule is a plain description; :meth:`LinkSchedule.transitions` turns it
into an ordered stream of ``(time, up)`` changes, drawing any randomness
(dial-up jitter, random on/off) from the ``random.Random`` it is given, which
the world derives from the run's seed.  Streams may be infinite (periodic and
random schedules); the world consumes them lazily with a SimPy process, so a
schedule costs one SimPy event per change and nothing in between.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Iterator


class LinkSchedule:
    """Base class: ``initial_up`` at time 0, then ``transitions``."""

    initial_up: bool = True

    def transitions(self, rng: random.Random) -> Iterator[tuple[float, bool]]:
        """Yield ``(time, up)`` in strictly increasing time, each a change."""
        return iter(())

    def _validate_intervals(self, intervals: list[tuple[float, float]], what: str) -> None:
        last = -1.0
        for start, end in intervals:
            if not (0 <= start < end):
                raise ValueError(f"{what}: interval ({start}, {end}) must have 0 <= start < end")
            if start < last:
                raise ValueError(f"{what}: intervals must be sorted and not overlap")
            last = end


def _changes(intervals: list[tuple[float, float]], inside: bool) -> Iterator[tuple[float, bool]]:
    """The changes for sorted intervals during which the link is ``inside``.

    Touching intervals (one ends where the next starts) are one interval:
    yielding the end and the next start at the same instant would flap the
    link for zero seconds, resetting open connections on the way.
    """
    pending: float | None = None           # end of the interval seen last
    for start, end in intervals:
        if pending is not None and start == pending:
            pending = end                  # continues the previous interval
            continue
        if pending is not None:
            yield (pending, not inside)
        if start > 0:
            yield (start, inside)
        pending = end
    if pending is not None:
        yield (pending, not inside)


@dataclass(frozen=True)
class AlwaysUp(LinkSchedule):
    """The link never goes down."""


@dataclass(frozen=True)
class Outages(LinkSchedule):
    """Up, except during each ``(start, end)`` interval (seconds)."""

    intervals: list[tuple[float, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._validate_intervals(list(self.intervals), "outages")

    @property
    def initial_up(self) -> bool:  # type: ignore[override]
        return not (self.intervals and self.intervals[0][0] == 0)

    def transitions(self, rng: random.Random) -> Iterator[tuple[float, bool]]:
        return _changes(self.intervals, inside=False)


@dataclass(frozen=True)
class Intervals(LinkSchedule):
    """Down, except during each listed ``(start, end)`` interval."""

    up: list[tuple[float, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._validate_intervals(list(self.up), "intervals")

    @property
    def initial_up(self) -> bool:  # type: ignore[override]
        return bool(self.up) and self.up[0][0] == 0

    def transitions(self, rng: random.Random) -> Iterator[tuple[float, bool]]:
        return _changes(self.up, inside=True)


@dataclass(frozen=True)
class DialupWindows(LinkSchedule):
    """A dial-up line: up for ``up`` seconds every ``every`` seconds.

    Window ``k`` opens at ``offset + k * every`` plus a jitter drawn
    uniformly from ``[0, jitter]``.  Jitter never makes windows overlap:
    it must be less than ``every - up``.
    """

    up: float
    every: float
    offset: float = 0.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if not (0 < self.up < self.every):
            raise ValueError("dial-up: need 0 < up < every")
        if not (0 <= self.jitter <= self.every - self.up):
            raise ValueError("dial-up: jitter must be within [0, every - up]")
        if self.offset < 0:
            raise ValueError("dial-up: offset must be >= 0")

    @property
    def initial_up(self) -> bool:  # type: ignore[override]
        return False

    def transitions(self, rng: random.Random) -> Iterator[tuple[float, bool]]:
        k = 0
        while True:
            start = self.offset + k * self.every + (rng.uniform(0, self.jitter) if self.jitter else 0.0)
            if start <= 0:
                start = 1e-9 if k == 0 else start
            yield (start, True)
            yield (start + self.up, False)
            k += 1


@dataclass(frozen=True)
class RandomOnOff(LinkSchedule):
    """Alternating up and down periods with exponential lengths."""

    mean_up: float
    mean_down: float
    start_up: bool = True

    def __post_init__(self) -> None:
        if self.mean_up <= 0 or self.mean_down <= 0:
            raise ValueError("random on/off: means must be > 0")

    @property
    def initial_up(self) -> bool:  # type: ignore[override]
        return self.start_up

    def transitions(self, rng: random.Random) -> Iterator[tuple[float, bool]]:
        t, up = 0.0, self.start_up
        while True:
            t += rng.expovariate(1.0 / (self.mean_up if up else self.mean_down))
            up = not up
            yield (t, up)
