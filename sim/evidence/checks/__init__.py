"""Guarantee checks by GUARANTEES.md ID.

``REGISTRY`` maps each implemented ID to its :class:`~.base.Check`.
:func:`validate_params` is what the scenario loader calls on each
expectation's parameters; :func:`run_check` runs one check on a run's
evidence and never raises for a bad parameter or an unknown ID (both become
a failing, undecided result naming the problem).
"""
from __future__ import annotations

import difflib
from typing import Any, Iterable

from pydantic import ValidationError

from mta.events import Event
from sim.evidence.checks.base import FAIL, REGISTRY, CheckResult, ParamError, undecidable
from sim.evidence.checks.params import parse, problems
from sim.evidence.model import Evidence
# Importing the modules registers their checks.
from sim.evidence.checks import (core, smtp, delivery, relay, ondemand, feed,  # noqa: F401,E402
                                 relay_access, feed_filters, mx, retry)


def validate_params(guarantee: str, params: dict[str, Any] | None,
                    hosts: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """The problems with ``params`` for ``guarantee``'s check, as ``(key
    path, message)`` pairs in plain words; ``[]`` when they are fine.

    Key paths are relative to ``params`` (``limit``, ``per_host.mx1.lifetime``,
    ``exchangers``); ``""`` means the parameters as a whole (a required choice
    between keys).

    Host names are checked against ``hosts`` (the scenario's) when given.
    A guarantee no check implements has nothing to validate here (its run
    is reported undecidable).
    """
    chk = REGISTRY.get(guarantee)
    if chk is None:
        return []
    try:
        parse(chk.params, params, hosts)
    except ValidationError as exc:
        return problems(chk.params, exc)
    return []


def validate_because(guarantee: str, because: str) -> str | None:
    """What is wrong with ``because: <because>`` on an expectation of
    ``guarantee``, in plain words, or None when the check names that cause."""
    chk = REGISTRY.get(guarantee)
    names = [c for c, _ in chk.causes] if chk is not None else []
    if because in names:
        return None
    if not names:
        return f"the {guarantee} check names no causes, so 'because' cannot be used with it"
    close = difflib.get_close_matches(because, names, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"expected one of the {guarantee} check's causes: {', '.join(names)}; " \
           f"got '{because}'{hint}"


def run_check(gid: str, evidence: Evidence | list[Event],
              params: dict[str, Any] | None = None) -> CheckResult:
    """Run check ``gid`` on ``evidence`` (or on a bare log, wrapped);
    unknown IDs and bad params give a failing, undecided result."""
    chk = REGISTRY.get(gid)
    if chk is None:
        return undecidable(gid, f"no check is implemented for guarantee {gid!r}")
    if not isinstance(evidence, Evidence):
        evidence = Evidence(evidence)
    try:
        model = parse(chk.params, params)
    except ValidationError as exc:
        text = "; ".join(f"{k}: {m}" if k else m for k, m in problems(chk.params, exc))
        return CheckResult(gid, FAIL, f"bad parameters: {text}", [], decided=False)
    try:
        return chk.fn(evidence, model)
    except ParamError as exc:
        return CheckResult(gid, FAIL, f"bad parameters: {exc}", [], decided=False)
