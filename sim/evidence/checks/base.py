"""What a guarantee check is, the registry, and helpers shared by checks.

A check is ``function(evidence, params) -> CheckResult``: ``evidence`` is the
run's :class:`~sim.evidence.model.Evidence`, ``params`` its parameter model
(a :class:`~sim.evidence.checks.params.Params`) validated from the mapping
given with the expectation in the scenario.  It is registered under the ID
it has in GUARANTEES.md with :func:`check`, which names its parameter model.

A check that cannot be decided from the log (the events it needs are not
there, or the run never exercised the situation) fails with
``decided=False`` and a detail starting ``undecidable:`` that names what is
missing: it never passes vacuously.  Every result says how much it judged
(``judged`` items of ``unit``, e.g. 68 "bounces and DSNs"); a pass that
judged nothing is turned into an undecidable result by :func:`verdict`, so a
check cannot pass on zero evidence even when its own guard is missing.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from mta import events as E
from mta.events.codec import to_dict
from sim.evidence.checks.params import Params, declaration
from sim.evidence.model import Evidence

PASS = "pass"
FAIL = "fail"
MAX_COUNTEREXAMPLES = 20   # kept in the result; the detail gives the full count


class ParamError(ValueError):
    """Parameters that validated but cannot be used on this log (the
    scenario's mistake, found while judging)."""


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
    judged: int | None = None      # how many items the check judged (None: undecidable)
    unit: str = ""                 # what those items are ("bounces and DSNs")
    causes: dict[str, int] = field(default_factory=dict)   # counterexamples per cause


CheckFn = Callable[[Evidence, Any], CheckResult]


@dataclass(frozen=True)
class Check:
    """A registered check: its ID, its function, its parameter model and the
    causes its counterexamples name (what an ``expect: violated`` may name
    with ``because:``), each with a one-line meaning."""

    id: str
    fn: CheckFn
    params: type[Params]
    causes: tuple[tuple[str, str], ...] = ()


REGISTRY: dict[str, Check] = {}


def check(gid: str) -> Callable[[CheckFn], CheckFn]:
    """Register a check under its GUARANTEES.md ID, with the parameter model
    and the causes (name -> meaning) that the parameter module named like
    the check's declares for it (:func:`~.params.declaration`: the one
    statement of both, which validation reads without loading the check)."""
    def deco(fn: CheckFn) -> CheckFn:
        if gid in REGISTRY:
            raise TypeError(f"check {gid!r} registered twice")
        params, causes = declaration(fn.__module__.rpartition(".")[2], gid)
        REGISTRY[gid] = Check(gid, fn, params, causes)
        return fn
    return deco


# -- building results --------------------------------------------------------

def cx(why: str, *, msg: str = "", trace: str = "", rcpt: str = "",
       hosts: Iterable[str] = (), times: Iterable[float] = (),
       events: Iterable[E.Event] = (), cause: str = "") -> dict[str, Any]:
    """One counterexample, in the shape the report expects.  ``cause`` is one
    of the causes the check registered (what ``because:`` can name)."""
    evs = list(events)
    out = {"cause": cause} if cause else {}
    return out | {"why": why, "msg": msg, "trace": trace, "rcpt": rcpt,
            "hosts": sorted(set(hosts)), "times": [float(t) for t in times],
            "events": [to_dict(e) for e in sorted(evs, key=lambda e: e.t)]}


def verdict(gid: str, cxs: list[dict[str, Any]], ok: str, bad: str, *,
            judged: int, unit: str) -> CheckResult:
    """Pass with ``ok`` when there is no counterexample, else fail with ``bad``
    (``{n}`` in it is the number of counterexamples).

    ``judged`` is how many ``unit`` (a plural noun phrase: "bounces and
    DSNs", "queued copies") the check looked at.  A pass on ``judged == 0``
    is undecidable: nothing was there to break the guarantee.
    """
    if cxs:
        n = len(cxs)
        detail = bad.format(n=n)
        if n > MAX_COUNTEREXAMPLES:
            detail += f" (first {MAX_COUNTEREXAMPLES} of {n} counterexamples shown)"
        causes: dict[str, int] = {}
        for c in cxs:
            if c.get("cause"):
                causes[c["cause"]] = causes.get(c["cause"], 0) + 1
        # Show one counterexample of every cause among those kept, not only the commonest.
        kept = _each_cause_first(cxs)[:MAX_COUNTEREXAMPLES]
        return CheckResult(gid, FAIL, detail, kept, judged=judged, unit=unit,
                           causes=dict(sorted(causes.items())))
    if judged <= 0:
        return undecidable(gid, f"nothing to judge: 0 {unit} in the log")
    return CheckResult(gid, PASS, ok, judged=judged, unit=unit)


def _each_cause_first(cxs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``cxs`` with the first counterexample of each cause moved to the front
    (in order of first appearance); otherwise in the check's order."""
    firsts, seen = [], set()
    for i, c in enumerate(cxs):
        if c.get("cause", "") not in seen:
            seen.add(c.get("cause", ""))
            firsts.append(i)
    front = set(firsts)
    return [cxs[i] for i in firsts] + [c for i, c in enumerate(cxs) if i not in front]


def undecidable(gid: str, missing: str) -> CheckResult:
    """The log cannot decide the check: fail, and say what is missing."""
    return CheckResult(gid, FAIL, f"undecidable: {missing}", [], decided=False)


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


def enhanced_code(text: str) -> str | None:
    """The RFC 3463 code at the start of a reply text (``5.7.1``), if any."""
    m = re.match(r"\s*([245])\.(\d{1,3})\.(\d{1,3})(?:\s|$)", text or "")
    return ".".join(m.groups()) if m else None
