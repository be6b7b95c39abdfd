"""Retry schedules: when a deferred message is tried again, and when given up.

Named presets reproduce the real MTAs' default behaviour, from their
sources (see ``docs/retry-schedules.md`` for each timeline):

``postfix``   qmgr, in whole seconds: the next try comes after the message's
              age in the queue, clamped to [minimal_backoff_time 300 s,
              maximal_backoff_time 4000 s], at the deferred-queue scan
              (queue_run_delay 300 s) that takes its stamp; given up at a
              deferral at or after maximal_queue_lifetime (5 d), a bounce
              after bounce_queue_lifetime (5 d).  Measured against Postfix
              3.7 by tests/test_retry_fidelity_postfix.py.
``exim``      retry rules ``F,2h,15m; G,16h,1h,1.5; F,4d,6h`` measured from
              the first failure, as retry.c computes them; given up at a
              failure later than the final cutoff (4 d).  ``per_host`` keeps
              the records per destination (:class:`~mta.retry.exim.EximHints`).
``sendmail``  ``sendmail -bd -q30m``: every queue run (30 min); returned at
              the first failure at or after Timeout.queuereturn (5 d);
              warning after Timeout.queuewarn (4 h).
``rfc5321``   RFC 5321 §4.5.4.1 plain: every 30 min, given up after 5 days.
``custom``    fixed or geometric backoff between bounds, with a lifetime.

Every schedule answers one question, :meth:`RetrySchedule.next_attempt`,
as a pure function of its arguments: the queue calls it after each failed
attempt.  ``schedule.with_lifetime(seconds)`` gives the same discipline with
another lifetime (per-domain overrides, e.g. an SMTP feed's 2 days).

Exim's rules, retry record and schedule live in :mod:`mta.retry.exim`, the
shared basics (durations, the protocol, queue runs) in :mod:`mta.retry.base`;
every name is importable from here as well.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable

from mta.retry.base import DAY, HOUR, MINUTE, RetrySchedule, ScheduleBase, queue_run_at_or_after
from mta.retry.exim import (EXIM_DEFAULT_RULES, EximRetryRecord, EximRule, EximSchedule,
                            parse_exim_rules)
from mta.units import parse_duration

__all__ = [
    "MINUTE", "HOUR", "DAY", "RetrySchedule",
    "PostfixSchedule", "EximRule", "EXIM_DEFAULT_RULES", "parse_exim_rules", "EximRetryRecord",
    "EximSchedule", "SendmailSchedule", "CustomSchedule", "preset_names", "preset",
    "Timeline", "timeline",
]


# -- Postfix -------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class PostfixSchedule(ScheduleBase):
    """Postfix qmgr (``src/qmgr/qmgr_active.c``, ``qmgr_active_feed`` and
    ``qmgr_active_done_25_generic`` / ``_3_generic``), in qmgr's whole seconds.

    After a deferral at ``now`` (qmgr's ``event_time()``, ``t = floor(now)``;
    arrival ``c = floor(queued_at)``): if ``t >= c + lifetime`` the message
    is returned ("status=expired"); otherwise the queue file's time stamp
    becomes ``t + clamp(t - c, minimal_backoff, maximal_backoff)``
    (:meth:`next_try`).  A deferred-queue scan (every ``queue_interval`` =
    queue_run_delay) takes a file whose stamp is at most one second ahead
    of it (``st_mtime > time() + 1`` skips it), so the next attempt is the
    first scan at or after ``stamp - 1``.  ``lifetime == 0`` tries once.  A
    message from ``<>`` (a bounce) lives ``bounce_lifetime``
    (bounce_queue_lifetime) instead, never more than ``lifetime``.
    """

    name: str = "postfix"
    lifetime: float = 5 * DAY            # maximal_queue_lifetime
    minimal_backoff: float = 300.0       # minimal_backoff_time
    maximal_backoff: float = 4000.0      # maximal_backoff_time
    queue_interval: float = 300.0        # queue_run_delay
    delay_warning: float | None = None   # delay_warning_time = 0h: off
    bounce_lifetime: float | None = 5 * DAY  # bounce_queue_lifetime

    def __post_init__(self) -> None:
        self._check()
        if not 0 < self.minimal_backoff <= self.maximal_backoff:
            raise ValueError("need 0 < minimal_backoff <= maximal_backoff")
        if self.lifetime < 0:
            raise ValueError("lifetime must not be negative")

    @property
    def min_backoff(self) -> float:
        # Whole-second stamps (up to 1 s) and the scan's one second of
        # slack (1 s) can bring a retry that much closer to the failure.
        return max(self.minimal_backoff - 2, 0.0)

    @property
    def max_backoff(self) -> float:
        return self.maximal_backoff + self.queue_interval

    def next_try(self, queued_at: float, now: float) -> float:
        """The time stamp qmgr writes on the queue file after a deferral at ``now``."""
        t = math.floor(now)
        delay = min(max(t - math.floor(queued_at), self.minimal_backoff), self.maximal_backoff)
        return t + delay

    def next_attempt(self, queued_at: float, first_failure: float, now: float,
                     attempts: int) -> float | None:
        if math.floor(now) >= math.floor(queued_at) + self.lifetime:
            return None
        stamp = self.next_try(queued_at, now)
        if self.queue_interval <= 0:
            return stamp
        run = queue_run_at_or_after(stamp - 1, self.queue_interval, self.queue_phase)
        return run if run > now else run + self.queue_interval

    def for_bounce(self) -> "PostfixSchedule":
        """The schedule of a message from ``<>``: bounce_queue_lifetime, capped
        at maximal_queue_lifetime as qmgr does at start-up."""
        if self.bounce_lifetime is None:
            return self
        return dataclasses.replace(self, lifetime=min(self.bounce_lifetime, self.lifetime))


# -- Sendmail ------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class SendmailSchedule(ScheduleBase):
    """A sendmail daemon started ``sendmail -bd -q30m`` (op guide §3.2).

    A message is tried on arrival, then in every queue run (every
    ``queue_interval``) after its failure, no sooner than ``min_queue_age``
    (the MinQueueAge option, default 0) after it.  ``dropenvelope()``
    returns it at the first failure at or after Timeout.queuereturn (5 d);
    a warning goes out after Timeout.queuewarn (4 h).
    """

    name: str = "sendmail"
    lifetime: float = 5 * DAY               # Timeout.queuereturn
    queue_interval: float = 30 * MINUTE     # -q30m
    min_queue_age: float = 0.0              # MinQueueAge
    delay_warning: float | None = 4 * HOUR  # Timeout.queuewarn

    def __post_init__(self) -> None:
        self._check()
        if self.queue_interval <= 0:
            raise ValueError("sendmail needs a queue interval (-q)")
        if self.lifetime < 0 or self.min_queue_age < 0:
            raise ValueError("lifetime and min_queue_age must not be negative")

    @property
    def min_backoff(self) -> float:
        # A message that failed just before a queue run is tried in that run:
        # sendmail has no per-message minimum beyond MinQueueAge.
        return self.min_queue_age

    @property
    def max_backoff(self) -> float:
        return self.queue_interval + self.min_queue_age

    def next_attempt(self, queued_at: float, first_failure: float, now: float,
                     attempts: int) -> float | None:
        if now - queued_at >= self.lifetime:
            return None
        qi, phase = self.queue_interval, self.queue_phase
        run = phase + (math.floor((now - phase) / qi) + 1) * qi  # strictly after now
        if run < now + self.min_queue_age:
            run = queue_run_at_or_after(now + self.min_queue_age, qi, phase)
        return run


# -- RFC 5321 plain and custom ----------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class CustomSchedule(ScheduleBase):
    """Backoff ``min_interval * factor**(attempts-1)`` capped at
    ``max_interval`` (``factor`` 1: a fixed interval); given up at the first
    failure at or after ``lifetime`` from queueing (``lifetime`` 0: try once)."""

    name: str = "custom"
    lifetime: float = 5 * DAY
    min_interval: float = 30 * MINUTE
    max_interval: float = 30 * MINUTE
    factor: float = 1.0

    def __post_init__(self) -> None:
        self._check()
        if not 0 < self.min_interval <= self.max_interval:
            raise ValueError("need 0 < min_backoff <= max_backoff")
        if self.factor < 1:
            raise ValueError("factor must be at least 1 (1 = fixed interval)")
        if self.lifetime < 0:
            raise ValueError("lifetime must not be negative")

    @property
    def min_backoff(self) -> float:
        return self.min_interval

    @property
    def max_backoff(self) -> float:
        # A queue runner (queue_interval) can stretch a gap by up to one run.
        return self.max_interval + self.queue_interval

    def next_attempt(self, queued_at: float, first_failure: float, now: float,
                     attempts: int) -> float | None:
        if now - queued_at >= self.lifetime:
            return None
        exponent = max(attempts - 1, 0)
        gap = self.min_interval
        if self.factor > 1:
            # Compare in log space so huge exponents never overflow.
            limit = math.log(self.max_interval / self.min_interval) / math.log(self.factor)
            gap = (self.max_interval if exponent >= limit
                   else self.min_interval * self.factor ** exponent)
        gap = min(gap, self.max_interval)
        return queue_run_at_or_after(now + gap, self.queue_interval, self.queue_phase)


def _rfc5321(**kw: Any) -> CustomSchedule:
    """RFC 5321 §4.5.4.1: retry interval at least 30 minutes; give-up time
    "at least 4-5 days": we take 5 days."""
    kw.setdefault("name", "rfc5321")
    return CustomSchedule(**kw)


# -- presets ---------------------------------------------------------------------------

_ALIASES: dict[str, dict[str, str]] = {
    "postfix": {"maximal_queue_lifetime": "lifetime", "minimal_backoff_time": "minimal_backoff",
                "maximal_backoff_time": "maximal_backoff", "queue_run_delay": "queue_interval",
                "delay_warning_time": "delay_warning", "min_backoff": "minimal_backoff",
                "bounce_queue_lifetime": "bounce_lifetime",
                "max_backoff": "maximal_backoff"},
    "exim": {"retry": "rules", "retry_rules": "rules"},
    "sendmail": {"queuereturn": "lifetime", "queuewarn": "delay_warning", "q": "queue_interval",
                 "MinQueueAge": "min_queue_age"},
    "rfc5321": {"min_backoff": "min_interval", "max_backoff": "max_interval"},
    "custom": {"min_backoff": "min_interval", "max_backoff": "max_interval"},
}
_FACTORIES: dict[str, Callable[..., Any]] = {
    "postfix": PostfixSchedule, "exim": EximSchedule, "sendmail": SendmailSchedule,
    "rfc5321": _rfc5321, "custom": CustomSchedule,
}
_NOT_DURATIONS = {"name", "rules", "factor", "per_host"}
_SCHEDULE_CLASS = {"rfc5321": CustomSchedule}


def preset_settings(name: str) -> list[str]:
    """The override names preset ``name`` accepts (its fields and the MTA's
    own parameter names), sorted."""
    key = name.lower()
    cls = _SCHEDULE_CLASS.get(key, _FACTORIES[key])
    fields = {f.name for f in dataclasses.fields(cls)} - {"name", "bounce"}
    if key in ("custom", "rfc5321"):
        fields.add("interval")
    return sorted(fields | set(_ALIASES[key]) | {"lifetime"})


def preset_names() -> list[str]:
    return sorted(_FACTORIES)


def preset(name: str, **overrides: Any) -> RetrySchedule:
    """A named schedule with its real defaults, optionally overridden.

    Overrides use the schedule's field names or the MTA's own parameter
    names (``maximal_queue_lifetime``, ``queuereturn``, ``retry_rules``...).
    Durations may be numbers of seconds or texts like ``"2d"``; a
    ``delay_warning`` of 0 or None means no warning.  ``lifetime`` works for
    every preset (for Exim it moves the final cutoff).
    """
    key = name.lower()
    if key not in _FACTORIES:
        raise ValueError(f"unknown retry preset {name!r}; known: {', '.join(preset_names())}")
    aliases = _ALIASES[key]
    unknown = sorted(set(overrides) - set(preset_settings(key)))
    if unknown:
        raise ValueError(f"the {key} preset has no setting {', '.join(map(repr, unknown))} "
                         f"(it takes: {', '.join(preset_settings(key))})")
    kw: dict[str, Any] = {}
    for given, value in overrides.items():
        field = aliases.get(given, given)
        if field not in _NOT_DURATIONS and value is not None:
            value = parse_duration(value)
        if field == "delay_warning" and not value:
            value = None
        kw[field] = value
    lifetime = kw.pop("lifetime", None) if key == "exim" else None
    if "interval" in kw:  # one fixed interval: custom and rfc5321
        kw["min_interval"] = kw["max_interval"] = kw.pop("interval")
    try:
        schedule = _FACTORIES[key](**kw)
    except TypeError as exc:
        raise ValueError(f"retry preset {name!r}: {exc}") from exc
    return schedule.with_lifetime(lifetime) if lifetime is not None else schedule


@dataclass(frozen=True)
class Timeline:
    """The attempts a schedule makes for a message that never gets through."""

    attempts: tuple[float, ...]
    gave_up_at: float


def timeline(schedule: RetrySchedule, queued_at: float = 0.0,
             attempt_duration: float | Callable[[int], float] = 0.0,
             max_attempts: int = 100_000) -> Timeline:
    """Replay a message that fails every attempt: the first attempt at
    ``queued_at``, each taking ``attempt_duration`` seconds (or a function of
    the attempt number), until the schedule gives up."""
    attempts: list[float] = []
    start, first_failure = queued_at, None
    while len(attempts) < max_attempts:
        attempts.append(start)
        n = len(attempts)
        took = attempt_duration(n) if callable(attempt_duration) else attempt_duration
        failed_at = start + took
        if first_failure is None:
            first_failure = failed_at
        nxt = schedule.next_attempt(queued_at, first_failure, failed_at, n)
        if nxt is None:
            return Timeline(tuple(attempts), failed_at)
        if not nxt > failed_at:
            raise AssertionError(f"{schedule.name}: next attempt {nxt} not after failure {failed_at}")
        start = nxt
    raise RuntimeError(f"{schedule.name}: no give-up within {max_attempts} attempts")
