"""Guarantee checks by GUARANTEES.md ID.

:func:`find` gives the :class:`~.base.Check` of one ID, importing only the
module that implements it (:data:`MODULES`), so that judging loads the
checks a run expects and not the whole evidence layer; ``REGISTRY`` (every
implemented ID to its check) imports them all on first use.
:func:`declared` gives what validating a scenario needs of a check, its
parameter model and the causes it names, from the parameter module of the
same name (:mod:`sim.evidence.checks.params`) without the check itself
(start-up goal in DESIGN.md).  :func:`validate_params` is what the scenario
loader calls on each expectation's parameters; :func:`run_check` runs one
check on a run's evidence and never raises for a bad parameter or an
unknown ID (both become a failing, undecided result naming the problem).
"""
from __future__ import annotations

import difflib
import importlib
from typing import TYPE_CHECKING, Any, Iterable

from pydantic import ValidationError

from sim.evidence.checks.params import Params, declaration, parse, problems

if TYPE_CHECKING:
    from mta.events import Event
    from sim.evidence.checks.base import Check, CheckResult
    from sim.evidence.model import Evidence

#: Which module of this package implements each guarantee's check (importing
#: a module registers its checks), and so which module of ``params`` declares
#: its parameters and causes (``tests/test_check_index.py`` holds this table
#: to what the modules register and declare).
MODULES: dict[str, str] = {
    "bounce-dsn": "core", "conservation": "core",
    "full-logging": "smtp", "reply-codes": "smtp",
    "dialup-primary-loses-mail": "delivery", "filters-on-every-mx": "delivery",
    "mx-fallback": "delivery", "queueing-server-etrn": "delivery",
    "sender-gives-up": "delivery",
    "auth-required": "relay", "max-recipients-30": "relay", "max-size-30mb": "relay",
    "no-open-relay": "relay", "no-relay-via-isp-outbound": "relay", "smart-host": "relay",
    "connectivity-probe": "ondemand", "dialup-no-bounce": "ondemand",
    "etrn-flush": "ondemand", "smtp-on-demand-finger": "ondemand",
    "feed-latency-20s": "feed", "feed-lockdown": "feed", "feed-queue-2d": "feed",
    "alt-port-2525": "relay_access", "blocked-attachments": "relay_access",
    "pop-before-smtp": "relay_access", "port25-interception": "relay_access",
    "relay-default-deny": "relay_access", "sender-affiliated": "relay_access",
    "feed-greylisting": "feed_filters", "feed-spam-levels": "feed_filters",
    "feed-virus-deleted": "feed_filters",
    "mx-order": "mx",
    "retry-discipline": "retry",
    "dnsbl-check": "dnsbl",
}


def find(gid: str) -> Check | None:
    """The check of guarantee ``gid``, or None when none implements it."""
    module = MODULES.get(gid)
    if module is None:
        return None
    importlib.import_module(f"{__name__}.{module}")
    from sim.evidence.checks.base import REGISTRY
    return REGISTRY.get(gid)


def all_checks() -> dict[str, Check]:
    """Every implemented check by ID (imports every check module)."""
    for module in sorted(set(MODULES.values())):
        importlib.import_module(f"{__name__}.{module}")
    from sim.evidence.checks.base import REGISTRY
    return REGISTRY


def declared(gid: str) -> tuple[type[Params], tuple[tuple[str, str], ...]] | None:
    """The parameter model of guarantee ``gid``'s check and the causes
    (name, meaning) it names, as its check registers them, read from its
    parameter module without importing the check; None when no check
    implements ``gid``."""
    module = MODULES.get(gid)
    return None if module is None else declaration(module, gid)


def __getattr__(name: str) -> Any:
    # ``REGISTRY`` is complete only once every module is imported: it is
    # served through all_checks() so that no caller sees half of it.
    if name == "REGISTRY":
        return all_checks()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    found = declared(guarantee)
    if found is None:
        return []
    model = found[0]
    try:
        parse(model, params, hosts)
    except ValidationError as exc:
        return problems(model, exc)
    return []


def validate_because(guarantee: str, because: str) -> str | None:
    """What is wrong with ``because: <because>`` on an expectation of
    ``guarantee``, in plain words, or None when the check names that cause."""
    found = declared(guarantee)
    names = [c for c, _ in found[1]] if found is not None else []
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
    from sim.evidence.checks.base import FAIL, CheckResult, ParamError, undecidable
    from sim.evidence.model import Evidence
    chk = find(gid)
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
