"""The documented retry behaviour of each MTA a sender may model, as bounds.

This table is the judge's own reading of the MTAs' documentation
(``shared/REFERENCE.md`` §2, postconf(5), Exim's specification chapter 32
"Retry configuration", the Sendmail Installation and Operation Guide, RFC
5321 §4.5.4.1).  It never imports ``mta.retry`` or any component's schedule
(an import-linter contract in ``pyproject.toml`` says so): a preset that
drifts from the real MTA must show up as a finding, not be copied into the
bounds.

A scenario says what each host runs (a preset name, its settings,
per-domain lifetimes: :class:`HostRetry`); :func:`model` turns that into a
:class:`RetryModel`, the bounds ``retry-discipline`` judges a copy by.
:func:`rfc5321` is the standard's floor, for ``against: rfc5321``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from mta.units import parse_duration

MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0

#: The retry presets a scenario may name, and what each documents.
SOURCES: dict[str, str] = {
    "postfix": "postconf(5): queue_run_delay 300s, minimal_backoff_time 300s, "
               "maximal_backoff_time 4000s, maximal_queue_lifetime 5d, "
               "bounce_queue_lifetime 5d",
    "exim": "Exim spec ch. 32 and configure.default: * * F,2h,15m; G,16h,1h,1.5; F,4d,6h, "
            "per host, retried at queue runs (Debian: -q30m), retry_interval_max 24h, "
            "ignore_bounce_errors_after 2d",
    "sendmail": "Sendmail op guide: sendmail -bd -q30m, Timeout.queuereturn 5d, "
                "MinQueueAge 0",
    "rfc5321": "RFC 5321 4.5.4.1: retry interval at least 30 minutes, give-up after "
               "at least 4-5 days",
    "custom": "the scenario's own min_backoff, max_backoff and lifetime",
}

#: Settings that do not bound retries (a delay warning is a DSN, not a retry).
NOT_BOUNDS = frozenset({"delay_warning", "factor"})

# Exim's default retry rule (configure.default), as (kind, cutoff, interval,
# multiplier): every 15 min for 2 h, then from 1 h growing x1.5 up to 16 h
# after the first failure, then every 6 h until 4 days.
_EXIM_RULES = (("F", 2 * HOUR, 15 * MINUTE, 1.0), ("G", 16 * HOUR, 1 * HOUR, 1.5),
               ("F", 4 * DAY, 6 * HOUR, 1.0))
_EXIM_QUEUE_RUN = 30 * MINUTE      # Debian's exim4 daemon: -q30m
_EXIM_INTERVAL_MAX = DAY           # retry_interval_max


@dataclass(frozen=True)
class HostRetry:
    """What a scenario says one host retries with."""

    preset: str
    settings: Mapping[str, float] = field(default_factory=dict)
    lifetimes: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RetryModel:
    """Bounds on one host's retries of one copy, in seconds.

    ``first_gap``: shortest wait from the first delivery round to the
    second; ``min_gap``: between any later two; ``max_gap``: longest pause
    while the copy is alive and not held (None: no bound); ``lifetime``: no
    give-up sooner (from queueing, or from the destination's first failure
    when ``lifetime_per_destination``, bounces excepted); ``give_up_within``: the give-up comes
    at most this long after the lifetime ends (None: no bound);
    ``bounce_lifetime``: ``lifetime`` for copies of bounces (``<>`` sender).
    """

    name: str
    source: str
    first_gap: float
    min_gap: float
    max_gap: float | None
    lifetime: float
    give_up_within: float | None
    bounce_lifetime: float
    lifetime_per_destination: bool = False
    lifetimes: Mapping[str, float] = field(default_factory=dict)

    def lifetime_for(self, domain: str, null_sender: bool) -> float:
        """The lifetime of a copy for ``domain`` (a per-domain setting wins)."""
        own = self.lifetimes.get(domain.lower())
        if own is not None:
            return own
        return self.bounce_lifetime if null_sender else self.lifetime


def _setting(spec: HostRetry, *names: str, default: float) -> float:
    for n in names:
        if n in spec.settings:
            return parse_duration(spec.settings[n])
    return default


def _exim_longest_gap(rules: tuple[tuple[str, float, float, float], ...]) -> float:
    """The longest interval the rules produce before their final cutoff
    (a G rule's interval grows only while failures fall inside it)."""
    longest, start, last = 0.0, 0.0, 0.0
    for kind, cutoff, interval, factor in rules:
        gap = interval if kind == "F" or last < interval else last * factor
        t = start
        while True:
            gap = min(gap, _EXIM_INTERVAL_MAX)
            longest = max(longest, gap)
            if kind == "F" or t + gap > cutoff:
                break
            t += gap
            gap *= factor
        start, last = cutoff, gap
    return longest


def _exim_rules(lifetime: float | None) -> tuple[tuple[str, float, float, float], ...]:
    """The default rules, their final cutoff moved to ``lifetime`` (a
    per-domain ``F,2d,1h``-style limit keeps the rules that end before it)."""
    if lifetime is None:
        return _EXIM_RULES
    kept = [r for r in _EXIM_RULES if r[1] < lifetime]
    final = next((r for r in _EXIM_RULES if r[1] >= lifetime), _EXIM_RULES[-1])
    return tuple(kept) + ((final[0], lifetime, final[2], final[3]),)


def model(spec: HostRetry) -> RetryModel:
    """The documented bounds for what ``spec`` says a host runs."""
    name = spec.preset.lower()
    lifetimes = {d.lower(): parse_duration(v) for d, v in spec.lifetimes.items()}
    if name == "postfix":
        lo = _setting(spec, "min_backoff", "minimal_backoff_time", default=300.0)
        hi = _setting(spec, "max_backoff", "maximal_backoff_time", default=4000.0)
        scan = _setting(spec, "queue_run_delay", default=300.0)
        life = _setting(spec, "lifetime", "maximal_queue_lifetime", default=5 * DAY)
        bounce = _setting(spec, "bounce_queue_lifetime", default=5 * DAY)
        # The next try is due clamp(age, lo, hi) after a deferral and taken
        # at the next deferred-queue scan; the message is returned at its
        # first deferral after the lifetime, so within one pause of it.
        return RetryModel(name, SOURCES[name], lo, lo, hi + scan, life, hi + scan, bounce,
                          False, lifetimes)
    if name == "exim":
        life = _setting(spec, "lifetime", default=_EXIM_RULES[-1][1])
        rules = _exim_rules(life)
        shortest = min(r[2] for r in rules)
        longest = _exim_longest_gap(rules) + _EXIM_QUEUE_RUN
        # Retry times are per destination host, so the final cutoff counts
        # from the host's first failure; attempts also come from immediate
        # deliveries and from connections reused for waiting messages, not
        # only from -q30m runs, so the floor is the rules' interval.
        bounce = _setting(spec, "ignore_bounce_errors_after", default=2 * DAY)
        return RetryModel(name, SOURCES[name], shortest, shortest, longest, life, longest,
                          bounce, True, lifetimes)
    if name == "sendmail":
        runs = _setting(spec, "queue_interval", "q", default=30 * MINUTE)
        age = _setting(spec, "min_queue_age", "MinQueueAge", default=0.0)
        life = _setting(spec, "lifetime", "queuereturn", default=5 * DAY)
        # Tried on arrival, then in every queue run at least MinQueueAge
        # after the failure: the first retry may be the very next run.
        return RetryModel(name, SOURCES[name], age, max(runs, age), runs + age, life,
                          runs + age, life, False, lifetimes)
    if name in ("rfc5321", "custom"):
        lo = _setting(spec, "min_backoff", "interval", default=30 * MINUTE)
        hi = _setting(spec, "max_backoff", "interval", default=max(lo, 30 * MINUTE))
        life = _setting(spec, "lifetime", default=5 * DAY)
        return RetryModel(name, SOURCES[name], lo, lo, hi, life, hi, life, False, lifetimes)
    raise ValueError(f"no documented retry model for preset {spec.preset!r}; known: "
                     f"{', '.join(sorted(SOURCES))}")


def rfc5321(lifetimes: Mapping[str, float] | None = None) -> RetryModel:
    """RFC 5321 §4.5.4.1's floor: at least 30 minutes between tries of a
    destination, give-up no sooner than 4 days (the bottom of "4-5 days");
    the RFC sets no longest pause and no latest give-up."""
    return RetryModel("rfc5321", SOURCES["rfc5321"], 30 * MINUTE, 30 * MINUTE, None,
                      4 * DAY, None, 4 * DAY, False, dict(lifetimes or {}))
