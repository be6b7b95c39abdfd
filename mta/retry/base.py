"""What every retry schedule shares: durations, the protocol the queue
calls, queue-run timing and the common fields (:mod:`mta.retry.presets` re-exports
the public names)."""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)([smhdw]?)")


def parse_duration(value: float | int | str) -> float:
    """Seconds from a number or a text such as ``"5d"``, ``"1h30m"``, ``"300"``.

    The text syntax is Postfix's and Exim's: numbers each followed by a unit
    (s, m, h, d, w), concatenated; a bare number is seconds.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = value.strip().lower()
        pos, seconds = 0, 0.0
        while pos < len(text):
            m = _DURATION_RE.match(text, pos)
            if not m or m.end() == pos:
                raise ValueError(f"not a duration: {value!r} (use e.g. 300, 15m, 2h, 5d, 1h30m)")
            seconds += float(m.group(1)) * _UNITS[m.group(2) or "s"]
            pos = m.end()
        if not text:
            raise ValueError("empty duration")
    if seconds < 0 or math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"not a duration: {value!r}")
    return seconds


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

    def with_lifetime(self, seconds: float | str):
        """The same schedule with another lifetime (a per-domain override)."""
        return dataclasses.replace(self, lifetime=parse_duration(seconds))
