"""Why an expectation is not met, as plain text: for the console, the
JUnit ``<failure>`` body and the pytest plugin's failure report."""
from __future__ import annotations

import textwrap

from mta import events as E
from sim.evidence.verdict import GuaranteeResult, Verdict
from sim.report.tables import fmt_t
from sim.report.timeline import row_details, timeline

#: Counterexamples spelled out, and timeline rows shown for each.
SHOWN_COUNTEREXAMPLES = 5
SHOWN_ROWS = 30


def verdict_line(g: GuaranteeResult, name: str | None = None, width: int | None = None) -> str:
    """One expectation in one line, the same wherever it is printed
    (``mxsim check``, JUnit, the pytest plugin): ``name: expected holds,
    pass: detail``, the detail cut between words to ``width`` if given."""
    detail = " ".join(g.detail.split())
    if width is not None:
        detail = textwrap.shorten(detail, width, placeholder=" ...")
    because = f" because {g.because}" if g.because else ""
    causes = ""
    if g.because and g.status == "fail" and g.because not in g.causes:
        causes = f" (causes found: {', '.join(g.causes) or 'none named'})"
    return f"{name or g.id}: expected {g.expected}{because}, {g.result}{causes}: {detail}"


def failure_text(verdict: Verdict, index: int, events: list[E.Event]) -> str:
    """Why expectation ``index`` of ``verdict`` is not met, with the
    timelines of its first counterexamples (from the run's ``events``)."""
    g = verdict.guarantees[index]
    lines = [f"{verdict.scenario}: {verdict_line(g)}"]
    for n, c in enumerate(g.counterexamples[:SHOWN_COUNTEREXAMPLES], 1):
        lines.append(f"counterexample {n}: {c.get('why', '')}")
        for d in timeline(events, c)[:SHOWN_ROWS]:
            lines.append(f"  {fmt_t(d['t']):>16}  {d['host']:<24} {d['kind']:<20} "
                         f"{row_details(d)[:140]}")
    if len(g.counterexamples) > SHOWN_COUNTEREXAMPLES:
        lines.append(f"... {len(g.counterexamples) - SHOWN_COUNTEREXAMPLES} more "
                     f"counterexamples in the report")
    return "\n".join(lines)
