"""Exim's retry rules: parsing ``F,2h,15m; G,16h,1h,1.5; F,4d,6h``, the
stateful retry record of Exim's ``src/src/retry.c``, and the pure
:class:`EximSchedule` the queue uses (all re-exported by :mod:`mta.retry.presets`)."""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

from mta.retry.base import DAY, ScheduleBase, queue_run_at_or_after
from mta.units import parse_duration


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
    in ``src/src/retry.c`` does, and consulted as ``retry_check_address``
    does before a delivery (the stateful original the pure
    :class:`EximSchedule` reconstructs for one message)."""

    rules: tuple[EximRule, ...]
    retry_interval_max: float = DAY
    first_failed: float | None = None
    last_try: float = 0.0
    next_try: float = 0.0
    expired: bool = False       # no rule covers the failing interval any more
    # Exim derives this as next_try - last_try in integer seconds; kept
    # apart here so float times cannot round it down.
    predicted_gap: float = 0.0

    def fail(self, now: float, received_time: float) -> float | None:
        """Record a failure at ``now`` of a message received at
        ``received_time``: the next try time, or None when the address times
        out (it is bounced).  The record lives on for the other messages."""
        if self.first_failed is None:
            self.first_failed = self.last_try = self.next_try = now
        failing = now - self.first_failed
        final = self.rules[-1]
        rule = next((r for r in self.rules if failing <= r.cutoff), None)
        self.expired = timed_out = rule is None
        if rule is None:
            rule = final  # the final rule still sets the next try for others
        elif received_time <= self.first_failed and now - received_time > final.cutoff:
            rule, timed_out = None, True  # on the queue longer than the final cutoff
        if rule is None:
            gap = 0.0  # next_try = now: the next message gets one try
        else:
            lastgap = min(self.predicted_gap, now - self.last_try)
            gap = min(rule.gap(lastgap), self.retry_interval_max)
        self.last_try, self.next_try, self.predicted_gap = now, now + gap, gap
        return None if timed_out else self.next_try

    def check(self, now: float, received_time: float) -> str:
        """Before a delivery at ``now`` of a message received at
        ``received_time``: ``try``, ``wait`` (retry time not reached) or
        ``fail`` (the destination has been failing past the final cutoff and
        its retry time is not reached: smtp's ``delay_after_cutoff``)."""
        if now >= self.next_try:
            return "try"
        if not self.expired and now - received_time > self.rules[-1].cutoff:
            return "try"  # retry_ultimate_address_timeout
        return "fail" if self.expired else "wait"


class EximHints:
    """Exim's retry hints database for one queue: a retry record per
    destination, shared by every message to it.  Only host errors (no
    connection, or a 421) write a record; a destination that answered is
    forgotten (Exim deletes the host's record).  Exim keys records by host
    name, IP and port; mxsim keys them by recipient domain, which is the
    same for a domain with one MX host, or whose hosts fail together.

    A queue run takes its messages one after the other, oldest first
    (``queue_run_in_order``; Exim's default order is random, mxsim's must
    be deterministic): a message is judged after the older ones waiting for
    the same destination in the same run, by the record their rounds leave
    if they fail too."""

    def __init__(self) -> None:
        self._records: dict[str, EximRetryRecord] = {}
        self._trying: dict[str, EximSchedule] = {}   # destinations with a round under way
        # Per destination: when each waiting message was last looked at, and
        # the instants of the last two visits (the current run and the one before).
        self._visits: dict[str, dict[tuple[float, str], float]] = {}
        self._runs: dict[str, tuple[float, float]] = {}

    def check(self, destination: str, now: float, received_time: float,
              msg: str = "") -> tuple[str, float]:
        """``(verdict, next_try)`` before an attempt of ``msg`` (received at
        ``received_time``), see :meth:`EximRetryRecord.check`; ``try`` when
        the destination has no record."""
        key = (received_time, msg)
        record = self._records.get(destination)
        if record is None:
            schedule = self._trying.get(destination)
            if schedule is None:
                return "try", now
            # A first round to it is under way: judged by the record it leaves.
            record = EximRetryRecord(schedule.rules, schedule.retry_interval_max)
            record.fail(now, received_time)
            self._visit(destination, key, now)
            return record.check(now, received_time), record.next_try
        ahead = self._older_pending(destination, key, now)
        if ahead or destination in self._trying:
            # Judge by the record the rounds ahead leave: each older message
            # the run takes first is tried if the record lets it, and fails.
            record = dataclasses.replace(record)
            for older in ahead:
                if record.check(now, older) == "try":
                    record.fail(now, older)
            if destination in self._trying and record.check(now, received_time) == "try":
                record.fail(now, received_time)
        verdict = record.check(now, received_time)
        if verdict == "fail":
            self._leave(destination, key)
        else:
            self._visit(destination, key, now)
        return verdict, record.next_try

    def _visit(self, destination: str, key: tuple[float, str], now: float) -> None:
        previous, current = self._runs.get(destination, (-math.inf, -math.inf))
        if now > current:
            previous, current = current, now
            self._runs[destination] = (previous, current)
            visits = self._visits.setdefault(destination, {})
            for stale in [k for k, t in visits.items() if t < previous]:
                del visits[stale]   # left the queue (or waits no more)
        self._visits.setdefault(destination, {})[key] = now

    def _older_pending(self, destination: str, key: tuple[float, str], now: float) -> list[float]:
        """The arrival times of the older messages that waited in the previous
        run and are not yet looked at in this one, oldest first."""
        previous, current = self._runs.get(destination, (-math.inf, -math.inf))
        last = current if now > current else previous   # the run before this one
        return [k[0] for k, t in sorted(self._visits.get(destination, {}).items())
                if k < key and t == last and t < now]

    def _leave(self, destination: str, key: tuple[float, str]) -> None:
        self._visits.get(destination, {}).pop(key, None)

    def trying(self, destination: str, schedule: "EximSchedule") -> None:
        """A round to ``destination`` starts (its outcome clears this)."""
        self._trying[destination] = schedule

    def failed(self, destination: str, schedule: "EximSchedule", now: float,
               received_time: float, msg: str = "") -> float | None:
        """A host error at ``now`` for ``msg``: the destination's next try, or
        None (the message times out)."""
        self._trying.pop(destination, None)
        record = self._records.get(destination)
        if record is None:
            record = self._records[destination] = EximRetryRecord(
                schedule.rules, schedule.retry_interval_max)
        due = record.fail(now, received_time)
        if due is None:
            self._leave(destination, (received_time, msg))
        return due

    def answered(self, destination: str, received_time: float = 0.0, msg: str = "") -> None:
        """The destination answered ``msg`` (whatever it said to the recipients)."""
        self._trying.pop(destination, None)
        self._records.pop(destination, None)
        self._leave(destination, (received_time, msg))


@dataclass(frozen=True, kw_only=True)
class EximSchedule(ScheduleBase):
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

    ``per_host`` makes the queue keep Exim's retry records per destination
    (:class:`EximHints`), as the real Exim does: after a host error the next
    try is the destination's, shared by every message to it, and a message
    whose destination has been failing past the final cutoff bounces.  This
    per-message timeline then serves the other errors (a 4xx to RCPT: Exim's
    address retry record, whose failing interval is at least the message's
    age).  It is off by default until the checks judge rounds a destination's
    retry time held back (see ``docs/retry-schedules.md``).

    A bounce (:meth:`for_bounce`) that fails permanently before it is
    ``ignore_bounce_errors_after`` old is frozen until then, tried once
    more, and discarded if that fails (``deliver.c``, :meth:`thawed`).
    """

    name: str = "exim"
    rules: tuple[EximRule, ...] | str = EXIM_DEFAULT_RULES
    retry_interval_max: float = DAY
    delay_warning: float | None = DAY  # delay_warning = 24h
    per_host: bool = False
    ignore_bounce_errors_after: float = 2 * DAY   # configure.default
    bounce: bool = False                          # the schedule of a message from <>

    def __post_init__(self) -> None:
        self._check()
        if isinstance(self.rules, str):
            object.__setattr__(self, "rules", parse_exim_rules(self.rules))
        if self.retry_interval_max <= 0:
            raise ValueError("retry_interval_max must be positive")
        if self.ignore_bounce_errors_after < 0:
            raise ValueError("ignore_bounce_errors_after must not be negative")

    def for_bounce(self) -> "EximSchedule":
        """The schedule of a message from ``<>``: frozen, not dropped, when it
        fails permanently before ``ignore_bounce_errors_after``."""
        return dataclasses.replace(self, bounce=True)

    def thawed(self, queued_at: float, now: float) -> float | None:
        """When a bounce that failed permanently at ``now`` is tried once
        more (the first queue run once it is ``ignore_bounce_errors_after``
        old), or None: discarded now.  (A bounce whose temporary failures
        time out under the rules is discarded at once: deliver.c.)"""
        thaw = queued_at + self.ignore_bounce_errors_after
        if not self.bounce or now >= thaw:
            return None
        return queue_run_at_or_after(thaw, self.queue_interval, self.queue_phase)

    def ultimate_timeout(self, queued_at: float) -> float:
        """The first queue run at which a message is older than the final
        cutoff: Exim tries it then even before its destination's retry time
        (``retry_ultimate_address_timeout``)."""
        t = queued_at + self.lifetime
        run = queue_run_at_or_after(t, self.queue_interval, self.queue_phase)
        if run > t:
            return run
        return run + self.queue_interval if self.queue_interval > 0 else math.nextafter(t, math.inf)

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
        return queue_run_at_or_after(now + gap, self.queue_interval, self.queue_phase)
