"""What a guarantee check is, the registry, and helpers shared by checks.

A check is ``function(events, params) -> CheckResult``.  It is registered
under the ID it has in GUARANTEES.md with :func:`check`.  ``params`` is the
mapping given with the expectation in the scenario; each check documents its
keys in its docstring (and in docs/guarantees.md).

A check that cannot be decided from the log (the events it needs are not
there, or the run never exercised the situation) fails with
``decided=False`` and a detail starting ``undecidable:`` that names what is
missing: it never passes vacuously.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from mta import events as E
from mta.events.codec import to_dict
from mta.units import parse_duration

PASS = "pass"
FAIL = "fail"
MAX_COUNTEREXAMPLES = 20   # kept in the result; the detail gives the full count


class ParamError(ValueError):
    """A check was given parameters it cannot use (the scenario's mistake)."""


@dataclass
class CheckResult:
    """The outcome of one check.

    ``counterexamples``: dicts with any of ``msg``, ``trace``, ``rcpt``,
    ``hosts``, ``times``, ``why`` and ``events`` (canonical dicts of the
    events that break the guarantee).
    """

    id: str
    status: str
    detail: str
    counterexamples: list[dict[str, Any]] = field(default_factory=list)
    decided: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "detail": self.detail,
                "decided": self.decided, "counterexamples": self.counterexamples}


CheckFn = Callable[[list[E.Event], dict[str, Any]], CheckResult]
REGISTRY: dict[str, CheckFn] = {}


def check(gid: str) -> Callable[[CheckFn], CheckFn]:
    """Register a check under its GUARANTEES.md ID."""
    def deco(fn: CheckFn) -> CheckFn:
        if gid in REGISTRY:
            raise TypeError(f"check {gid!r} registered twice")
        fn.guarantee_id = gid  # type: ignore[attr-defined]
        REGISTRY[gid] = fn
        return fn
    return deco


# -- building results --------------------------------------------------------

def ev_dicts(evs: Iterable[E.Event]) -> list[dict[str, Any]]:
    return [to_dict(e) for e in evs]


def cx(why: str, *, msg: str = "", trace: str = "", rcpt: str = "",
       hosts: Iterable[str] = (), times: Iterable[float] = (),
       events: Iterable[E.Event] = ()) -> dict[str, Any]:
    """One counterexample, in the shape the report expects."""
    evs = list(events)
    return {"why": why, "msg": msg, "trace": trace, "rcpt": rcpt,
            "hosts": sorted(set(hosts)), "times": [float(t) for t in times],
            "events": ev_dicts(sorted(evs, key=lambda e: e.t))}


def passed(gid: str, detail: str) -> CheckResult:
    return CheckResult(gid, PASS, detail)


def failed(gid: str, detail: str, cxs: list[dict[str, Any]]) -> CheckResult:
    n = len(cxs)
    if n > MAX_COUNTEREXAMPLES:
        detail += f" (first {MAX_COUNTEREXAMPLES} of {n} counterexamples shown)"
    return CheckResult(gid, FAIL, detail, cxs[:MAX_COUNTEREXAMPLES])


def verdict(gid: str, cxs: list[dict[str, Any]], ok: str, bad: str) -> CheckResult:
    """Pass with ``ok`` when there is no counterexample, else fail with ``bad``."""
    if cxs:
        return failed(gid, bad.format(n=len(cxs)), cxs)
    return passed(gid, ok)


def undecidable(gid: str, missing: str) -> CheckResult:
    """The log cannot decide the check: fail, and say what is missing."""
    return CheckResult(gid, FAIL, f"undecidable: {missing}", [], decided=False)


# -- parameters ----------------------------------------------------------------

def p_str(params: dict, key: str, default: str | None = None) -> str:
    v = params.get(key, default)
    if v is None or not isinstance(v, str) or not v:
        raise ParamError(f"parameter {key!r} must be a non-empty string")
    return v


def p_list(params: dict, key: str, default: list | None = None) -> list[str]:
    v = params.get(key, default)
    if v is None:
        raise ParamError(f"parameter {key!r} is required (a list)")
    if isinstance(v, str):
        return [v]
    if not isinstance(v, (list, tuple)):
        raise ParamError(f"parameter {key!r} must be a list")
    return [str(x) for x in v]


def p_dur(params: dict, key: str, default: float | str | None = None) -> float:
    v = params.get(key, default)
    if v is None:
        raise ParamError(f"parameter {key!r} is required (a duration such as 300, 90m, 5d)")
    try:
        return parse_duration(v)
    except ValueError as exc:
        raise ParamError(f"parameter {key!r}: {exc}") from None


def p_num(params: dict, key: str, default: float | None = None) -> float:
    v = params.get(key, default)
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        raise ParamError(f"parameter {key!r} must be a number")
    return float(v)


# -- addresses -------------------------------------------------------------------

def ip_matches(ip: str, nets: Iterable[str]) -> bool:
    """``ip`` is one of ``nets`` (addresses or CIDR blocks)."""
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return ip in set(nets)
    for n in nets:
        try:
            if a in ipaddress.ip_network(n, strict=False):
                return True
        except ValueError:
            if ip == n:
                return True
    return False


def within(t: float, periods: Iterable[tuple[float, float]]) -> bool:
    return any(a <= t < b for a, b in periods)


def enhanced_code(text: str) -> str | None:
    """The RFC 3463 code at the start of a reply text (``5.7.1``), if any."""
    import re
    m = re.match(r"\s*([245])\.(\d{1,3})\.(\d{1,3})(?:\s|$)", text or "")
    return ".".join(m.groups()) if m else None
