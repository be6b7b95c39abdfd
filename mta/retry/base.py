"""What every retry schedule shares: time constants, the protocol the queue
calls, queue-run timing and the common fields (:mod:`mta.retry.presets` re-exports
the public names).  Durations in retry rules and overrides use the one
grammar of :mod:`mta.units`."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from mta.units import parse_duration

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0


@runtime_checkable
class RetrySchedule(Protocol):
    """What the queue asks of a retry discipline."""

    name: str
    lifetime: float            # seconds from first queueing to give-up
    min_backoff: float         # the retry-discipline check's lower bound between attempts
    max_backoff: float         # the check's upper bound on the gap between attempts while alive
    delay_warning: float | None  # seconds after queueing for a delay DSN, or None

    def next_attempt(self, queued_at: float, first_failure: float, now: float,
                     attempts: int) -> float | None:
        """Absolute time of the next attempt after a failure at `now` (the `attempts`-th failure,
        1-based), or None when the message must be given up (lifetime exhausted). Deterministic."""
        ...


def queue_run_at_or_after(t: float, interval: float, phase: float) -> float:
    """The first queue run at or after ``t``; runs are at ``phase + k*interval``."""
    if interval <= 0:
        return t
    k = math.ceil((t - phase) / interval - 1e-9)  # tolerate float noise on exact ticks
    return phase + k * interval


@dataclass(frozen=True, kw_only=True)
class ScheduleBase:
    """Fields every schedule has.  ``queue_interval`` > 0 models a queue
    runner: an attempt that is due waits for the next run, at
    ``queue_phase + k * queue_interval`` in loop time."""

    name: str
    delay_warning: float | None = None
    queue_interval: float = 0.0
    queue_phase: float = 0.0

    def _check(self) -> None:
        if self.queue_interval < 0:
            raise ValueError("queue_interval must not be negative")
        if self.delay_warning is not None and self.delay_warning <= 0:
            raise ValueError("delay_warning must be positive, or None for no warning")

    def for_bounce(self):
        """The schedule of a message from ``<>`` (a DSN): this one, unless the
        MTA gives bounces a lifetime of their own (Postfix, Exim)."""
        return self

    def with_lifetime(self, seconds: float | str):
        """The same schedule with another lifetime (a per-domain override)."""
        return dataclasses.replace(self, lifetime=parse_duration(seconds))
