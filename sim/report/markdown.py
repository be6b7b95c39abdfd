"""The Markdown report (report.md): summary, fates, hosts, undelivered
recipients, guarantees and the first counterexample of each failure."""
from __future__ import annotations

from typing import Any

from sim.evidence.model import Evidence
from sim.evidence.verdict import Verdict
from sim.report.swimlane import report_lanes
from sim.report.tables import HOST_COLUMNS, fmt_t, host_rows, undelivered
from sim.report.timeline import row_details, timeline


def md_cell(s: Any) -> str:
    """``s`` as the text of one Markdown table cell (pipes escaped, one line)."""
    return str(s).replace("|", "\\|").replace("\n", " ")


def render_md(v: Verdict, evidence: Evidence) -> str:
    """The text of report.md."""
    lines = [f"# mxsim report: {v.scenario or '(unnamed run)'}", "",
             f"- seed: {v.seed}",
             f"- simulated time: {fmt_t(v.t_start)} to {fmt_t(v.t_end)} "
             f"({v.t_end - v.t_start:g} s)",
             f"- expectations met: {'all' if v.ok else 'NOT all'} "
             f"({v.met_count}/{len(v.guarantees)})", "",
             "## Recipients by fate", "", "| fate | recipients |", "|---|---:|"]
    lines += [f"| {k} | {n} |" for k, n in v.counts.items()]
    lines += ["", "## Hosts", "", "| host | " + " | ".join(HOST_COLUMNS) + " |",
              "|---|" + "---:|" * len(HOST_COLUMNS)]
    lines += [f"| {r['host']} | " + " | ".join(str(r[c]) for c in HOST_COLUMNS) + " |"
              for r in host_rows(evidence)]
    rows, total = undelivered(evidence)
    lines += ["", f"## Recipients not delivered ({total})", ""]
    if rows:
        lines += ["| trace | rcpt | fate | path | accepted | fate at | why |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {md_cell(r['trace'])} | {md_cell(r['rcpt'])} | {r['fate']} | "
                  f"{md_cell(r['path'])} | {fmt_t(r['accepted'])} | {fmt_t(r['at'])} | "
                  f"{md_cell(r['why'])} |" for r in rows]
        if total > len(rows):
            lines.append(f"\n{total - len(rows)} more in verdict.json's counterexamples "
                         f"and the event log.")
    lines += ["", "## Timelines", "",
              "Any recipient, delivered or not, can be followed across hosts with "
              "`mxsim trace REPORT_DIR RECIPIENT` (or a queue ID or Message-ID)."]
    for trace, rcpt, lane in report_lanes(evidence, rows):
        lines += ["", f"### {md_cell(rcpt)} ({md_cell(trace)})", "", "```", lane, "```"]
    lines += ["", "## Guarantees", "",
              "| guarantee | expected | status | met | detail |", "|---|---|---|---|---|"]
    for g in v.guarantees:
        lines.append(f"| {g.id} | {g.expected} | {g.status} | "
                     f"{'yes' if g.met else 'NO'} | {md_cell(g.detail)} |")
    for g in v.guarantees:
        if g.status != "fail" or not g.counterexamples:
            continue
        c = g.counterexamples[0]
        lines += ["", f"### {g.id}: counterexample", "", f"{md_cell(c['why'])}", "",
                  f"msg `{c.get('msg') or '-'}`, trace `{c.get('trace') or '-'}`, "
                  f"rcpt `{c.get('rcpt') or '-'}`, hosts {', '.join(c.get('hosts', [])) or '-'}",
                  "", "| time | t (s) | host | event | details |", "|---|---:|---|---|---|"]
        for d in timeline(evidence.events, c):
            lines.append(f"| {fmt_t(d['t'])} | {d['t']:g} | {d['host']} | {d['kind']} | "
                         f"{md_cell(row_details(d))} |")
    return "\n".join(lines) + "\n"
