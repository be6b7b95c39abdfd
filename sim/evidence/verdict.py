"""The verdict of a run, and the tables both report renderers draw from.

* :func:`build_verdict`: the verdict.json contract of DESIGN.md, from the
  GuaranteeExpected events and the checks; :func:`dump_json` its bytes;
* :func:`host_rows`, :func:`undelivered`: per-host fates and the recipients
  that never reached a mailbox;
* :func:`fmt_t`: the stable time format of every table.

Re-exported by :mod:`sim.report.write`.
"""
from __future__ import annotations

import json
from typing import Any

from mta import events as E
from sim.events import GuaranteeExpected, RunStarted
from sim.evidence.checks import run_check
from sim.evidence.projections import (
    counts as count_fates, lifecycles, outcomes, run_bounds)


def fmt_t(t: float | None) -> str:
    """``93784.5`` -> ``1d 02:03:04.5``; stable, for tables."""
    if t is None:
        return "-"
    sign = "-" if t < 0 else ""
    t = abs(float(t))
    d, rem = divmod(t, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    frac = f"{s:06.3f}".rstrip("0").rstrip(".") if s != int(s) else f"{int(s):02d}"
    day = f"{int(d)}d " if d else ""
    return f"{sign}{day}{int(h):02d}:{int(m):02d}:{frac}"


def expectations(events: list[E.Event]) -> list[GuaranteeExpected]:
    return [e for e in events if isinstance(e, GuaranteeExpected)]


def met(expected: str, status: str, decided: bool) -> bool:
    """An expectation is met when a ``holds`` check passes, or a
    ``violated`` one fails on evidence (an undecidable failure meets nothing)."""
    return (expected == "holds" and status == "pass") or \
        (expected == "violated" and status == "fail" and decided)


def build_verdict(events: list[E.Event]) -> dict[str, Any]:
    """The verdict.json contract of DESIGN.md (plus ``met``, ``decided``,
    ``params`` per guarantee and ``ok`` overall)."""
    started = next((e for e in events if isinstance(e, RunStarted)), None)
    start, end = run_bounds(events)
    lives = lifecycles(events)
    guarantees = []
    for exp in expectations(events):
        res = run_check(exp.guarantee, events, exp.params)
        guarantees.append({
            "id": exp.guarantee, "expected": exp.expected, "params": exp.params,
            "status": res.status, "decided": res.decided,
            "met": met(exp.expected, res.status, res.decided),
            "detail": res.detail, "counterexamples": res.counterexamples})
    return {
        "scenario": started.scenario if started else "",
        "seed": started.seed if started else None,
        "t_start": start, "t_end": end,
        "counts": count_fates(events, lives),
        "guarantees": guarantees,
        "ok": all(g["met"] for g in guarantees),
    }


def dump_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, indent=2, allow_nan=False) + "\n"



_HOST_COLS = ["taken", "delivered", "relayed", "relayed-out", "bounced", "discarded", "queued",
              "lost"]
_UNDELIVERED_MAX = 100


def host_rows(events: list[E.Event]) -> list[dict[str, Any]]:
    """Per host: copies taken and their fates (loss fates summed as lost)."""
    from sim.evidence.projections import LOSS_FATES, BOUNCED_NULL_SENDER
    rows: dict[str, dict[str, Any]] = {}
    for lf in lifecycles(events):
        r = rows.setdefault(lf.host, {"host": lf.host, **{c: 0 for c in _HOST_COLS}})
        r["taken"] += 1
        fate = "lost" if lf.fate in LOSS_FATES else \
            "bounced" if lf.fate == BOUNCED_NULL_SENDER else lf.fate
        r[fate] += 1
    return [rows[h] for h in sorted(rows)]


def undelivered(events: list[E.Event]) -> tuple[list[dict[str, Any]], int]:
    """Recipients (not DSNs) that did not reach a mailbox: the first 100, and how many."""
    lives = lifecycles(events)
    by_key: dict[tuple[str, str], list] = {}
    for lf in lives:
        by_key.setdefault((lf.trace, lf.rcpt), []).append(lf)
    rows = []
    for o in outcomes(events, lives):
        if o.is_dsn or o.fate == "delivered":
            continue
        rows.append({"trace": o.trace, "rcpt": o.rcpt, "fate": o.fate,
                     "path": " > ".join(dict.fromkeys(o.hops)),
                     "accepted": o.accepted_t, "at": o.fate_t,
                     "why": _why(by_key.get((o.trace, o.rcpt), []))})
    return rows[:_UNDELIVERED_MAX], len(rows)


def _why(group: list) -> str:
    """A short reason for a recipient's end-to-end fate, from its copies."""
    for lf in group:
        fe = lf.fate_event
        if isinstance(fe, E.Bounced):
            return f"{lf.host}: {fe.code} {fe.text} ({fe.reason})"
        if isinstance(fe, E.Discarded):
            return f"{lf.host}: discarded by {fe.policy or '(no policy)'}: {fe.reason}"
    for lf in group:
        if lf.detail:
            return f"{lf.host}: {lf.detail}"
    held = [lf for lf in group if lf.fate == "queued"]
    if held:
        lf = held[-1]
        last = lf.deferrals[-1] if lf.deferrals else None
        tail = f"; last reply {last.code} {last.text}" if last else ""
        return f"still queued on {lf.host} after {len(lf.attempts)} attempts{tail}"
    return ""



# Rows of the "recipients by fate" table, in order (keys of verdict counts).
_COUNT_KEYS = ["accepted", "delivered", "bounced", "discarded", "queued", "relayed_out",
               "lost", "duplicates", "dsns"]
