"""What the report says before the results: what ran, in what world, and
what each guarantee means here.

Everything comes from the log: the scenario's description and topology
(``ScenarioDescribed``), each expectation's parameters and ``why:`` note
(``GuaranteeExpected``), and each guarantee's one-line meaning, the first
paragraph of its check's docstring (the same sentence `docs/guarantees.md`
opens with).
"""
from __future__ import annotations

import json
import re
from typing import Any

from mta.units import format_duration
from sim.evidence.checks import find
from sim.evidence.model import Evidence
from sim.evidence.verdict import Verdict


def meaning(gid: str) -> str:
    """The one-line meaning of guarantee ``gid`` (its check's docstring)."""
    chk = find(gid)
    doc = (chk.fn.__doc__ or "") if chk is not None else ""
    first = doc.strip().split("\n\n")[0]
    return " ".join(first.replace("``", "").split()) or "(no check is implemented for it)"


#: Parameter names whose numbers are durations (shown as ``3h21m``, not seconds).
_DURATION_KEY = re.compile(r"lifetime|backoff|tolerance|delay|within|window|interval|"
                           r"latency|after|age|timeout|gap")


def _humane(key: str, v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _humane(k, x) for k, x in v.items()}
    if isinstance(v, (int, float)) and not isinstance(v, bool) and _DURATION_KEY.search(key):
        return format_duration(float(v))
    return v


def params_text(params: dict[str, Any]) -> str:
    """Parameters in one line (``key=value``, durations humanised, nested
    values as compact JSON)."""
    def value(v: Any) -> str:
        return v if isinstance(v, str) else json.dumps(v, sort_keys=True, separators=(", ", ": "))
    return ", ".join(f"{k}={value(_humane(k, v))}" for k, v in sorted(params.items())) or "-"


def topology(evidence: Evidence) -> tuple[str, list[dict[str, Any]], dict[str, list]]:
    """(description, host rows, MX records by domain), empty for old logs."""
    d = evidence.described
    if d is None:
        return "", [], {}
    return d.description, list(d.topology.get("hosts", [])), dict(d.topology.get("mx", {}))


def waived_rows(evidence: Evidence) -> list[tuple[str, str, str]]:
    """(id, meaning, reason) of each guarantee the scenario waived."""
    d = evidence.described
    if d is None:
        return []
    return [(g, meaning(g).rstrip("."), why) for g, why in sorted(d.waived.items())]


def guarantee_rows(v: Verdict, evidence: Evidence) -> list[dict[str, Any]]:
    """Per expectation: id, meaning, parameters, why, the verdict's result and
    the evidence it rests on."""
    whys = [e.why for e in evidence.expectations]
    rows = []
    for i, g in enumerate(v.guarantees):
        rows.append({"id": g.id, "meaning": meaning(g.id), "params": params_text(g.params),
                     "why": whys[i] if i < len(whys) else "",
                     "expected": g.expected + (f" because {g.because}" if g.because else ""),
                     "result": g.result, "met": g.met, "detail": g.detail,
                     "evidence": g.evidence or "-",
                     "anchor": f"cx-{i}-{g.id}" if g.status == "fail" else ""})
    return rows
