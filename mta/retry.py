"""Retry schedules: when a deferred message is tried again, and when given up.

Named presets reproduce the real MTAs' default behaviour, from their
sources (see ``docs/retry-schedules.md`` for each timeline):

``postfix``   qmgr: the next try comes after the message's age in the queue,
              clamped to [minimal_backoff_time 300 s, maximal_backoff_time
              4000 s], on the next deferred-queue scan (queue_run_delay
              300 s); given up at a deferral later than
              maximal_queue_lifetime (5 d) after arrival.
``exim``      retry rules ``F,2h,15m; G,16h,1h,1.5; F,4d,6h`` measured from
              the first failure, as retry.c computes them; given up at a
              failure later than the final cutoff (4 d).
``sendmail``  ``sendmail -bd -q30m``: every queue run (30 min); returned at
              the first failure at or after Timeout.queuereturn (5 d);
              warning after Timeout.queuewarn (4 h).
``rfc5321``   RFC 5321 §4.5.4.1 plain: every 30 min, given up after 5 days.
``custom``    fixed or geometric backoff between bounds, with a lifetime.

Every schedule answers one question, :meth:`RetrySchedule.next_attempt`,
as a pure function of its arguments: the queue calls it after each failed
attempt.  ``schedule.with_lifetime(seconds)`` gives the same discipline with
another lifetime (per-domain overrides, e.g. an SMTP feed's 2 days).
"""
from __future__ import annotations

import dataclasses
import functools
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Protocol, runtime_checkable

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


def _queue_run_at_or_after(t: float, interval: float, phase: float) -> float:
    """The first queue run at or after ``t``; runs are at ``phase + k*interval``."""
    if interval <= 0:
        return t
    k = math.ceil((t - phase) / interval - 1e-9)  # tolerate float noise on exact ticks
    return phase + k * interval


@dataclass(frozen=True, kw_only=True)
class _Base:
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


# -- Postfix -------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class PostfixSchedule(_Base):
    """Postfix qmgr (``src/qmgr/qmgr_active.c``, ``qmgr_active_done_3_generic``).

    After a deferral at ``now``: if ``now > queued_at + lifetime`` the
    message is returned ("status=expired"); otherwise its next try is
    ``now + clamp(now - queued_at, minimal_backoff, maximal_backoff)``, taken
    at the first deferred-queue scan (every ``queue_interval`` =
    queue_run_delay) at or after that time.  ``lifetime == 0`` tries once.
    """

    name: str = "postfix"
    lifetime: float = 5 * DAY            # maximal_queue_lifetime
    minimal_backoff: float = 300.0       # minimal_backoff_time
    maximal_backoff: float = 4000.0      # maximal_backoff_time
    queue_interval: float = 300.0        # queue_run_delay
    delay_warning: float | None = None   # delay_warning_time = 0h: off

    def __post_init__(self) -> None:
        self._check()
        if not 0 < self.minimal_backoff <= self.maximal_backoff:
            raise ValueError("need 0 < minimal_backoff <= maximal_backoff")
        if self.lifetime < 0:
            raise ValueError("lifetime must not be negative")

    @property
    def min_backoff(self) -> float:
        return self.minimal_backoff

    @property
    def max_backoff(self) -> float:
        return self.maximal_backoff + self.queue_interval

    def next_attempt(self, queued_at: float, first_failure: float, now: float,
                     attempts: int) -> float | None:
        age = now - queued_at
        if self.lifetime == 0 or age > self.lifetime:
            return None
        delay = min(max(age, self.minimal_backoff), self.maximal_backoff)
        return _queue_run_at_or_after(now + delay, self.queue_interval, self.queue_phase)


# -- Exim ----------------------------------------------------------------------------

@dataclass(frozen=True)
class EximRule:
    """One Exim retry rule: ``F,<cutoff>,<interval>`` or
    ``G,<cutoff>,<interval>,<multiplier>`` (cutoff measured from the first
    failure).  ``factor_milli`` is the multiplier times 1000, as Exim keeps it."""

    kind: str
    cutoff: int
    interval: int
    factor_milli: int = 0

    def __str__(self) -> str:
        text = f"{self.kind},{_fmt(self.cutoff)},{_fmt(self.interval)}"
        return text + (f",{self.factor_milli / 1000:g}" if self.kind == "G" else "")

    def gap(self, lastgap: float) -> int:
        """The next interval, from the previous one (retry.c)."""
        if self.kind == "F" or lastgap < self.interval:
            return self.interval
        return (int(lastgap) * self.factor_milli) // 1000


def _fmt(seconds: int) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


EXIM_DEFAULT_RULES = "F,2h,15m; G,16h,1h,1.5; F,4d,6h"


def parse_exim_rules(text: str) -> tuple[EximRule, ...]:
    """Parse the rule part of an Exim retry line, e.g. ``F,2h,15m; G,16h,1h,1.5``."""
    rules = []
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        fields = [f.strip() for f in part.split(",")]
        kind = fields[0].upper()
        if kind == "H":
            raise ValueError(f"retry rule {part!r}: H rules are randomised; "
                             "mxsim schedules are deterministic (use G)")
        want = {"F": 3, "G": 4}.get(kind)
        if want is None or len(fields) != want:
            raise ValueError(f"retry rule {part!r}: expected F,<cutoff>,<interval> "
                             "or G,<cutoff>,<interval>,<multiplier>")
        cutoff, interval = int(parse_duration(fields[1])), int(parse_duration(fields[2]))
        if interval <= 0:
            raise ValueError(f"retry rule {part!r}: the interval must be positive")
        factor = round(float(fields[3]) * 1000) if kind == "G" else 0
        if kind == "G" and factor < 1000:
            raise ValueError(f"retry rule {part!r}: the multiplier must be at least 1")
        rules.append(EximRule(kind, cutoff, interval, factor))
    if not rules:
        raise ValueError("no retry rules")
    return tuple(rules)


@dataclass
class EximRetryRecord:
    """Exim's retry record for one destination, updated as ``retry_update``
    in ``src/src/retry.c`` does (the stateful original the pure
    :class:`EximSchedule` reconstructs)."""

    rules: tuple[EximRule, ...]
    retry_interval_max: float = DAY
    first_failed: float | None = None
    last_try: float = 0.0
    next_try: float = 0.0
    # Exim derives this as next_try - last_try in integer seconds; kept
    # apart here so float times cannot round it down.
    predicted_gap: float = 0.0

    def fail(self, now: float, received_time: float) -> float | None:
        """Record a failure at ``now``; the next try time, or None (bounced)."""
        if self.first_failed is None:
            self.first_failed = self.last_try = self.next_try = now
        failing = now - self.first_failed
        rule = next((r for r in self.rules if failing <= r.cutoff), None)
        if rule is None or now - received_time > self.rules[-1].cutoff:
            return None
        lastgap = min(self.predicted_gap, now - self.last_try)
        gap = min(rule.gap(lastgap), self.retry_interval_max)
        self.last_try, self.next_try, self.predicted_gap = now, now + gap, gap
        return self.next_try


@dataclass(frozen=True, kw_only=True)
class EximSchedule(_Base):
    """Exim's retry rules as ``retry_update`` (``src/src/retry.c``) applies them.

    At a failure at ``now``: the rule in force is the first whose cutoff is
    at least ``now - first_failure``.  If none is (or the message is older
    than the final cutoff: the ``received_time`` check), the address is
    bounced.  Otherwise F gives ``interval``; G gives ``interval`` when the
    previous gap was shorter than it, else the previous gap times the
    multiplier (integer arithmetic).  Gaps are capped by
    ``retry_interval_max`` (24 h).  The previous gap is reconstructed from
    ``attempts`` and ``now`` (see :meth:`_previous_gap`); it is exact when
    every attempt took the same time.
    """

    name: str = "exim"
    rules: tuple[EximRule, ...] | str = EXIM_DEFAULT_RULES
    retry_interval_max: float = DAY
    delay_warning: float | None = DAY  # delay_warning = 24h

    def __post_init__(self) -> None:
        self._check()
        if isinstance(self.rules, str):
            object.__setattr__(self, "rules", parse_exim_rules(self.rules))
        if self.retry_interval_max <= 0:
            raise ValueError("retry_interval_max must be positive")

    @property
    def lifetime(self) -> float:
        return float(self.rules[-1].cutoff)

    def with_lifetime(self, seconds: float | str) -> "EximSchedule":
        """Cut or extend the rules so the final cutoff is ``seconds``:
        rules ending before it are kept, the next one becomes the final rule."""
        cutoff = int(parse_duration(seconds))
        kept = [r for r in self.rules if r.cutoff < cutoff]
        final = next((r for r in self.rules if r.cutoff >= cutoff), self.rules[-1])
        rules = tuple(kept) + (dataclasses.replace(final, cutoff=cutoff),)
        return dataclasses.replace(self, rules=rules)

    @property
    def min_backoff(self) -> float:
        return float(min(min(r.interval for r in self.rules), self.retry_interval_max))

    @property
    def max_backoff(self) -> float:
        return max(self._rule_bounds) + self.queue_interval

    @functools.cached_property
    def _rule_bounds(self) -> list[float]:
        """The longest gap each rule can produce (a G rule only grows while
        its failures still fall before its cutoff)."""
        bounds, prev_cutoff, prev_max = [], 0, 0.0
        for rule in self.rules:
            if rule.kind == "F":
                longest = float(rule.interval)
            else:
                gap = float(rule.gap(prev_max))
                elapsed, longest = 0.0, gap
                while prev_cutoff + elapsed + gap <= rule.cutoff:
                    elapsed += gap
                    gap = float(rule.gap(gap))
                    longest = gap
            longest = min(longest, self.retry_interval_max)
            bounds.append(longest)
            prev_cutoff, prev_max = max(prev_cutoff, rule.cutoff), max(prev_max, longest)
        return bounds

    def _replay(self, failures: int, delay: float) -> tuple[float, float, float]:
        """Replay Exim from the first failure (at 0) with every attempt taking
        ``delay`` after its due time: (time of failure ``failures``, time of
        the one before, the gap predicted at the one before)."""
        t, prev_t, prev_gap, lastgap = 0.0, 0.0, 0.0, 0.0
        for _ in range(failures - 1):
            rule = next((r for r in self.rules if t <= r.cutoff), self.rules[-1])
            gap = min(rule.gap(lastgap), self.retry_interval_max)
            prev_t, prev_gap, lastgap = t, gap, gap
            t = t + gap + delay
        return t, prev_t, prev_gap

    def _previous_gap(self, elapsed: float, attempts: int) -> float:
        """The gap Exim predicted at the previous failure, which its retry
        record would hold.  Found by replaying ``attempts`` failures with a
        constant delay per attempt chosen so the last one lands at
        ``elapsed``; an attempt earlier than due counts its actual gap, as
        Exim takes the smaller of the predicted and the actual gap."""
        if attempts <= 1:
            return 0.0  # a new retry record: next_try == last_try
        t, prev_t, prev_gap = self._replay(attempts, 0.0)
        if t >= elapsed:  # on time, or early (forced delivery)
            actual = elapsed - prev_t
            return min(prev_gap, actual) if actual > 0 else prev_gap
        # Between cutoff crossings the replay ends at S + (n-1)*delay, S being
        # the sum of its gaps, so delay = (elapsed - S)/(n-1) is exact unless
        # the rules that fire change; then bisect, keeping a bracket.
        lo, hi = 0.0, elapsed / (attempts - 1)
        delay = (elapsed - t) / (attempts - 1)
        for _ in range(64):
            t, _prev, gap = self._replay(attempts, delay)
            if abs(t - elapsed) <= 1e-9 * max(1.0, elapsed):
                return gap
            if t < elapsed:
                lo = delay
            else:
                hi = delay
            exact = (elapsed - (t - (attempts - 1) * delay)) / (attempts - 1)
            delay = exact if lo < exact < hi else (lo + hi) / 2
        # The replay's end time can jump where a failure crosses a cutoff:
        # take the side that lands nearest to the real failure (ties: lo).
        below, above = self._replay(attempts, lo), self._replay(attempts, hi)
        return below[2] if elapsed - below[0] <= above[0] - elapsed else above[2]

    def next_attempt(self, queued_at: float, first_failure: float, now: float,
                     attempts: int) -> float | None:
        failing = now - first_failure
        if now - queued_at > self.lifetime or failing > self.lifetime:
            return None
        index = next(i for i, r in enumerate(self.rules) if failing <= r.cutoff)
        rule = self.rules[index]
        if rule.kind == "F":
            gap = float(rule.interval)
        else:
            gap = float(rule.gap(self._previous_gap(failing, attempts)))
        gap = min(gap, self._rule_bounds[index])
        return _queue_run_at_or_after(now + gap, self.queue_interval, self.queue_phase)


# -- Sendmail ------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class SendmailSchedule(_Base):
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
            run = _queue_run_at_or_after(now + self.min_queue_age, qi, phase)
        return run


# -- RFC 5321 plain and custom ----------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class CustomSchedule(_Base):
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
        return _queue_run_at_or_after(now + gap, self.queue_interval, self.queue_phase)


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
_NOT_DURATIONS = {"name", "rules", "factor"}


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
