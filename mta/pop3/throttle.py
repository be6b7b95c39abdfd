"""Rate limits on failed POP3 logins: a pure function of past failures.

A password guesser in a loop is slowed and then cut off:

* each client address keeps the times of its recent failures (within
  ``window`` seconds); the first ``free`` are answered at once, every later
  one only after ``base_delay * 2**k`` seconds (k = 0, 1, ...), capped at
  ``max_delay``.  The history is per address, not per connection, so
  reconnecting does not reset the delay;
* one connection is closed after ``max_failures`` failures.

Defaults: 2 free failures, then 2 s, 4 s, 8 s... up to 30 s, history kept
15 minutes, disconnect after the 5th failure on a connection.  2 s is
Dovecot's ``auth_failure_delay``; the doubling and the cap are ours.
Times are loop times (virtual in the simulation).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ThrottleConfig:
    """The knobs of :class:`LoginThrottle` (see the module docstring)."""

    free: int = 2
    base_delay: float = 2.0
    max_delay: float = 30.0
    window: float = 900.0
    max_failures: int = 5

    def __post_init__(self) -> None:
        if self.free < 0 or self.max_failures < 1:
            raise ValueError("free must be >= 0 and max_failures >= 1")
        if not 0 <= self.base_delay <= self.max_delay or self.window <= 0:
            raise ValueError("need 0 <= base_delay <= max_delay and window > 0")


@dataclass
class LoginThrottle:
    """Failure history per client address, shared by a server's sessions."""

    config: ThrottleConfig = field(default_factory=ThrottleConfig)
    _failures: dict[str, list[float]] = field(default_factory=dict, repr=False)

    #: Above this many addresses, stale histories are swept on each failure.
    MAX_ADDRESSES = 4096

    def failures(self, ip: str, now: float) -> int:
        """How many failures ``ip`` has within the window before ``now``."""
        recent = [t for t in self._failures.get(ip, ()) if now - t < self.config.window]
        if recent:
            self._failures[ip] = recent
        else:
            self._failures.pop(ip, None)
        return len(recent)

    def record_failure(self, ip: str, now: float) -> float:
        """Note a failed login from ``ip`` and return the delay (seconds)
        before its ``-ERR`` may be sent."""
        if len(self._failures) > self.MAX_ADDRESSES:   # many guessers: forget stale ones
            for old in sorted(self._failures):
                self.failures(old, now)
        n = self.failures(ip, now) + 1          # counting this one
        self._failures.setdefault(ip, []).append(now)
        return self.delay_for(n)

    def delay_for(self, n: int) -> float:
        """The delay for the ``n``-th recent failure (1-based)."""
        c = self.config
        if n <= c.free:
            return 0.0
        return min(c.max_delay, c.base_delay * 2 ** min(n - c.free - 1, 30))

    def cut_off(self, failures_on_connection: int) -> bool:
        """Whether a connection with that many failures is closed."""
        return failures_on_connection >= self.config.max_failures
