"""Why an expectation is not met, as plain text: for the console, the
JUnit ``<failure>`` body and the pytest plugin's failure report."""
from __future__ import annotations

from mta import events as E
from sim.evidence.verdict import Verdict
from sim.report.tables import fmt_t
from sim.report.timeline import row_details, timeline

#: Counterexamples spelled out, and timeline rows shown for each.
SHOWN_COUNTEREXAMPLES = 5
SHOWN_ROWS = 30


def failure_text(verdict: Verdict, index: int, events: list[E.Event]) -> str:
    """Why expectation ``index`` of ``verdict`` is not met, with the
    timelines of its first counterexamples (from the run's ``events``)."""
    g = verdict.guarantees[index]
    lines = [f"{verdict.scenario}: {g.id} expected {g.expected}, the check says "
             f"{g.status}{'' if g.decided else ' (undecided)'}: {g.detail}"]
    for n, c in enumerate(g.counterexamples[:SHOWN_COUNTEREXAMPLES], 1):
        lines.append(f"counterexample {n}: {c.get('why', '')}")
        for d in timeline(events, c)[:SHOWN_ROWS]:
            lines.append(f"  {fmt_t(d['t']):>16}  {d['host']:<24} {d['kind']:<20} "
                         f"{row_details(d)[:140]}")
    if len(g.counterexamples) > SHOWN_COUNTEREXAMPLES:
        lines.append(f"... {len(g.counterexamples) - SHOWN_COUNTEREXAMPLES} more "
                     f"counterexamples in the report")
    return "\n".join(lines)
