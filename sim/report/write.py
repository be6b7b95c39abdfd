"""The report of a run: verdict.json, report.md, report.html.

Everything here is a projection of the event log: the scenario and seed
come from RunStarted, the expectations from the GuaranteeExpected events
the runner writes right after it, so ``mxsim report DIR`` rebuilds the same
bytes from ``events.jsonl`` alone.  Output is deterministic: sorted keys,
no wall-clock stamps, PNGs without version metadata.

The concepts live in their own modules and are re-exported here:
:mod:`sim.evidence.verdict` (verdict building, shared tables, ``fmt_t``),
:mod:`sim.report.timeline` (counterexample timelines),
:mod:`sim.report.markdown` and :mod:`sim.report.html` (the two
renderers).  This module assembles and writes them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mta import events as E
from sim.report import plots  # noqa: F401 - kept importable as before the split
from sim.evidence.log import read_jsonl
from sim.report.html import _CSS, _img, figures, render_html  # noqa: F401 - re-exports
from sim.report.markdown import _md_cell, render_md  # noqa: F401 - re-exports
from sim.report.timeline import (  # noqa: F401 - re-exports
    _TIMELINE_MAX, _round_key, _summary, condense_rounds, timeline)
from sim.evidence.verdict import (  # noqa: F401 - re-exports
    _COUNT_KEYS, _HOST_COLS, _UNDELIVERED_MAX, _why, build_verdict, dump_json, expectations,
    fmt_t, host_rows, met, undelivered)

VERDICT = "verdict.json"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"


@dataclass
class Report:
    verdict: dict[str, Any]
    markdown: str
    html: str
    figures: dict[str, bytes]


def build_report(events: list[E.Event]) -> Report:
    """Compute everything a report holds, without writing it."""
    v = build_verdict(events)
    figs = figures(v, events)
    return Report(v, render_md(v, events), render_html(v, events, figs), figs)


def write_report(events: list[E.Event], out_dir: str | Path) -> Report:
    """Write verdict.json, report.md and report.html into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rep = build_report(events)
    (out / VERDICT).write_text(dump_json(rep.verdict), encoding="utf-8")
    (out / REPORT_MD).write_text(rep.markdown, encoding="utf-8")
    (out / REPORT_HTML).write_text(rep.html, encoding="utf-8")
    return rep


def report_dir(run_dir: str | Path, out_dir: str | Path | None = None) -> Report:
    """Re-report a run directory from its ``events.jsonl`` alone."""
    run_dir = Path(run_dir)
    events = read_jsonl(run_dir / "events.jsonl")
    return write_report(events, out_dir or run_dir)
