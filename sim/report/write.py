"""The report of a run: verdict.json, report.md, report.html.

Everything here is a projection of the event log: the scenario and seed
come from RunStarted, the expectations from the GuaranteeExpected events
the runner writes right after it, so ``mxsim report DIR`` rebuilds the same
bytes from ``events.jsonl`` alone.  Output is deterministic: sorted keys,
no wall-clock stamps, PNGs without version metadata.

:func:`build_report` judges the log once (one
:class:`~sim.evidence.model.Evidence`, one
:class:`~sim.evidence.verdict.Verdict`) and renders both reports from it;
:func:`write_report` writes the three files.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mta import events as E
from sim.evidence.log import read_jsonl
from sim.evidence.model import Evidence, collector_paused
from sim.evidence.verdict import Verdict, build_verdict
from sim.report.html import figures, render_html
from sim.report.markdown import render_md

VERDICT = "verdict.json"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"


@dataclass(frozen=True)
class Report:
    """A judged run, rendered: the verdict and the texts of the report files."""

    verdict: Verdict
    markdown: str
    html: str
    figures: dict[str, bytes]


def build_report(events: list[E.Event] | Evidence, verdict: Verdict | None = None) -> Report:
    """Judge (unless ``verdict`` is that of ``events`` already) and render
    everything a report holds, without writing it."""
    evidence = events if isinstance(events, Evidence) else Evidence(events)
    v = build_verdict(evidence) if verdict is None else verdict
    with collector_paused():        # the projections the sections read (see there)
        figs = figures(v, evidence)
        return Report(v, render_md(v, evidence), render_html(v, evidence, figs), figs)


def write_report(events: list[E.Event] | Evidence, out_dir: str | Path,
                 verdict: Verdict | None = None) -> Report:
    """Write verdict.json, report.md and report.html into ``out_dir``
    (``verdict``: as for :func:`build_report`)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rep = build_report(events, verdict)
    (out / VERDICT).write_text(rep.verdict.to_json(), encoding="utf-8")
    (out / REPORT_MD).write_text(rep.markdown, encoding="utf-8")
    (out / REPORT_HTML).write_text(rep.html, encoding="utf-8")
    return rep


def report_dir(run_dir: str | Path, out_dir: str | Path | None = None) -> Report:
    """Re-report a run directory from its ``events.jsonl`` alone."""
    run_dir = Path(run_dir)
    events = read_jsonl(run_dir / "events.jsonl")
    return write_report(events, out_dir or run_dir)
