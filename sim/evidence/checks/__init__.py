"""Guarantee checks by GUARANTEES.md ID.

``REGISTRY`` maps each implemented ID to its check; :func:`run_check` runs
one with its parameters and never raises for a bad parameter or an unknown
ID (both become a failing, undecided result naming the problem).
"""
from __future__ import annotations

from typing import Any

from mta.events import Event
from sim.evidence.checks.base import (
    FAIL, PASS, REGISTRY, CheckResult, ParamError, check, undecidable)
# Importing the modules registers their checks.
from sim.evidence.checks import core, smtp, delivery, relay, ondemand, feed  # noqa: F401,E402

__all__ = ["REGISTRY", "CheckResult", "ParamError", "check", "run_check", "PASS", "FAIL"]


def run_check(gid: str, events: list[Event], params: dict[str, Any] | None = None) -> CheckResult:
    """Run check ``gid``; unknown IDs and bad params give a failing result."""
    fn = REGISTRY.get(gid)
    if fn is None:
        return undecidable(gid, f"no check is implemented for guarantee {gid!r}")
    try:
        return fn(events, dict(params or {}))
    except ParamError as exc:
        return CheckResult(gid, FAIL, f"bad parameters: {exc}", [], decided=False)
