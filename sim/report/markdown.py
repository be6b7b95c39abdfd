"""The Markdown report (report.md): the same sections as report.html, in
the same order, without the figures: what ran and in what world, fates,
hosts, losses by cause, undelivered recipients, timelines, guarantees with
their meaning, latency, and the first counterexample of each failure."""
from __future__ import annotations

from typing import Any

from sim.evidence.model import Evidence, percentile
from sim.evidence.verdict import Verdict
from sim.report.about import guarantee_rows, topology, waived_rows
from sim.report.swimlane import report_lanes
from sim.report.tables import HOST_COLUMNS, fmt_t, host_rows, loss_causes, undelivered
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
             f"({v.met_count}/{len(v.guarantees)})", ""]
    description, hosts, mx = topology(evidence)
    if description or hosts:
        lines += ["## The run", ""]
        if description:
            lines += [md_cell(description), ""]
        if hosts:
            lines += ["| host | address | link | access | runs |", "|---|---|---|---|---|"]
            lines += [f"| {h['name']} | {h['address']} | {md_cell(h['link'])} | "
                      f"{md_cell(h['access'] or '-')} | {md_cell(', '.join(h['roles']) or '-')} |"
                      for h in hosts]
            lines.append("")
        if mx:
            lines += ["| domain | MX (preference host) |", "|---|---|"]
            lines += [f"| {d} | {', '.join(f'{p} {x}' for p, x in recs)} |"
                      for d, recs in mx.items()]
            lines.append("")
    lines += ["## Recipients by fate", "",
              "End to end: one count per recipient of each message, whatever hops it took.", "",
              "| fate | recipients |", "|---|---:|"]
    lines += [f"| {k} | {n} |" for k, n in v.counts.items()]
    lines += ["", "## Hosts", "", "Per hop: one count per recipient copy a host took.", "",
              "| host | " + " | ".join(HOST_COLUMNS) + " |",
              "|---|" + "---:|" * len(HOST_COLUMNS)]
    lines += [f"| {r['host']} | " + " | ".join(str(r[c]) for c in HOST_COLUMNS) + " |"
              for r in host_rows(evidence)]
    rows, total = undelivered(evidence)
    causes = loss_causes(evidence)
    if causes:
        lines += ["", "## Not delivered, by cause", "", "| recipients | fate | cause |",
                  "|---:|---|---|"]
        lines += [f"| {n} | {fate} | {md_cell(why or '-')} |" for n, fate, why in causes]
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
              "| guarantee | what it checks | parameters | why here | expected | result "
              "| evidence | met | detail |", "|---|---|---|---|---|---|---|---|---|"]
    for r in guarantee_rows(v, evidence):
        lines.append(f"| {r['id']} | {md_cell(r['meaning'])} | {md_cell(r['params'])} | "
                     f"{md_cell(r['why'] or '-')} | {r['expected']} | {r['result']} | "
                     f"{md_cell(r['evidence'])} | "
                     f"{'yes' if r['met'] else 'NO'} | {md_cell(r['detail'])} |")
    waived = waived_rows(evidence)
    if waived:
        lines += ["", "Not expected here (waived by the scenario):", ""]
        lines += [f"- **{g}** ({md_cell(m)}): {md_cell(why)}" for g, m, why in waived]
    lat = evidence.latencies
    lines += ["", "## Delivery latency", ""]
    if lat:
        lines += ["| percentile | latency |", "|---|---:|"]
        lines += [f"| p{q} | {fmt_t(percentile(lat, q))} |" for q in (50, 90, 99, 100)]
    else:
        lines.append("No recipient was delivered to a mailbox.")
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
