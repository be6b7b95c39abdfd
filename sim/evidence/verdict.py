"""The verdict of a run: one typed value from the judge to every face.

:func:`build_verdict` judges a run's :class:`~sim.evidence.model.Evidence`
(the GuaranteeExpected events and the checks) into a :class:`Verdict`.  The
CLI, the report renderers, the pytest plugin and the JUnit output read its
attributes; :meth:`Verdict.to_json` gives the bytes of ``verdict.json``, the
contract of DESIGN.md (plus ``met``, ``decided``, ``params`` and
``evidence`` per guarantee, and ``ok`` overall).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sim.events import RunStarted
from sim.evidence.checks import run_check
from sim.evidence.lifecycle import Counts
from sim.evidence.model import Evidence, collector_paused


def met(expected: str, status: str, decided: bool, because: str = "",
        causes: dict[str, int] | None = None) -> bool:
    """An expectation is met when a ``holds`` check passes, or a
    ``violated`` one fails on evidence (an undecidable failure meets
    nothing) with, if it names one (``because``), a counterexample of that
    cause."""
    if expected == "holds":
        return status == "pass"
    return expected == "violated" and status == "fail" and decided and \
        (not because or (causes or {}).get(because, 0) > 0)


@dataclass(frozen=True)
class GuaranteeResult:
    """One expectation of the run and what its check found."""

    id: str
    expected: str                  # "holds" or "violated"
    params: dict[str, Any]         # as written in the log (completed by the pipeline)
    status: str                    # the check's result: "pass" or "fail"
    decided: bool                  # False: the log could not decide the check
    met: bool
    detail: str
    counterexamples: tuple[dict[str, Any], ...] = ()
    judged: int | None = None      # how many items the check judged (None: undecided)
    unit: str = ""                 # what they are ("bounces and DSNs")
    because: str = ""              # the cause an expected violation must show ("" = any)
    causes: dict[str, int] = field(default_factory=dict)   # counterexamples per cause

    @property
    def result(self) -> str:
        """The check's result in one word: pass, fail or undecided."""
        return self.status if self.decided else "undecided"

    @property
    def evidence(self) -> str:
        """How much the result rests on, in words ("68 bounces and DSNs"), or
        "" when the check decided nothing."""
        return f"{self.judged} {self.unit}" if self.judged is not None else ""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "expected": self.expected, "params": self.params,
                "status": self.status, "decided": self.decided, "met": self.met,
                "detail": self.detail, "counterexamples": list(self.counterexamples),
                "evidence": None if self.judged is None
                else {"count": self.judged, "unit": self.unit},
                "because": self.because, "causes": dict(self.causes)}


@dataclass(frozen=True)
class Verdict:
    """The judged run: scenario, seed, time span, counts and guarantees."""

    scenario: str
    seed: int | None
    t_start: float
    t_end: float
    counts: Counts
    guarantees: tuple[GuaranteeResult, ...]

    @property
    def ok(self) -> bool:
        """Every expectation is met."""
        return all(g.met for g in self.guarantees)

    @property
    def met_count(self) -> int:
        """How many expectations are met."""
        return sum(g.met for g in self.guarantees)

    def case_names(self) -> list[str]:
        """One test-case name per expectation (see :func:`case_names`)."""
        return case_names([g.id for g in self.guarantees])

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "seed": self.seed,
                "t_start": self.t_start, "t_end": self.t_end,
                "counts": self.counts.to_dict(),
                "guarantees": [g.to_dict() for g in self.guarantees], "ok": self.ok}

    def to_json(self) -> str:
        """The text of ``verdict.json``: sorted keys, two-space indent, no NaN,
        a final newline."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=2, allow_nan=False) + "\n"


def case_names(ids: list[str]) -> list[str]:
    """One name per expectation: the guarantee ID, numbered when repeated
    (``feed-queue-2d[1]``, ``feed-queue-2d[2]``)."""
    seen: dict[str, int] = {}
    out = []
    for gid in ids:
        seen[gid] = seen.get(gid, 0) + 1
        out.append(gid if ids.count(gid) == 1 else f"{gid}[{seen[gid]}]")
    return out


def build_verdict(evidence: Evidence) -> Verdict:
    """Judge every expectation in the log on ``evidence``."""
    with collector_paused():
        return _judge(evidence)


def _judge(evidence: Evidence) -> Verdict:
    started: RunStarted | None = evidence.started
    start, end = evidence.bounds
    guarantees = []
    for exp in evidence.expectations:
        res = run_check(exp.guarantee, evidence, exp.params)
        guarantees.append(GuaranteeResult(
            id=exp.guarantee, expected=exp.expected, params=exp.params, status=res.status,
            decided=res.decided,
            met=met(exp.expected, res.status, res.decided, exp.because, res.causes),
            detail=res.detail, counterexamples=tuple(res.counterexamples),
            judged=res.judged if res.decided else None, unit=res.unit,
            because=exp.because, causes=res.causes))
    return Verdict(scenario=started.scenario if started else "",
                   seed=started.seed if started else None, t_start=start, t_end=end,
                   counts=evidence.counts, guarantees=tuple(guarantees))
