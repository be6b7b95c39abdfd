"""The Markdown report (report.md): summary, fates, hosts, undelivered
recipients, guarantees and the first counterexample of each failure.

Re-exported by :mod:`sim.report.write`.
"""
from __future__ import annotations

from typing import Any

from mta import events as E
from sim.report.timeline import _summary, timeline
from sim.evidence.verdict import _COUNT_KEYS, _HOST_COLS, fmt_t, host_rows, undelivered


def _md_cell(s: Any) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def render_md(verdict: dict[str, Any], events: list[E.Event]) -> str:
    v = verdict
    lines = [f"# mxsim report: {v['scenario'] or '(unnamed run)'}", "",
             f"- seed: {v['seed']}",
             f"- simulated time: {fmt_t(v['t_start'])} to {fmt_t(v['t_end'])} "
             f"({v['t_end'] - v['t_start']:g} s)",
             f"- expectations met: {'all' if v['ok'] else 'NOT all'} "
             f"({sum(g['met'] for g in v['guarantees'])}/{len(v['guarantees'])})", "",
             "## Recipients by fate", "", "| fate | recipients |", "|---|---:|"]
    lines += [f"| {k} | {v['counts'].get(k, 0)} |" for k in _COUNT_KEYS]
    lines += ["", "## Hosts", "", "| host | " + " | ".join(_HOST_COLS) + " |",
              "|---|" + "---:|" * len(_HOST_COLS)]
    lines += [f"| {r['host']} | " + " | ".join(str(r[c]) for c in _HOST_COLS) + " |"
              for r in host_rows(events)]
    rows, total = undelivered(events)
    lines += ["", f"## Recipients not delivered ({total})", ""]
    if rows:
        lines += ["| trace | rcpt | fate | path | accepted | fate at | why |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {_md_cell(r['trace'])} | {_md_cell(r['rcpt'])} | {r['fate']} | "
                  f"{_md_cell(r['path'])} | {fmt_t(r['accepted'])} | {fmt_t(r['at'])} | "
                  f"{_md_cell(r['why'])} |" for r in rows]
        if total > len(rows):
            lines.append(f"\n{total - len(rows)} more in verdict.json's counterexamples "
                         f"and the event log.")
    lines += ["", "## Guarantees", "",
              "| guarantee | expected | status | met | detail |", "|---|---|---|---|---|"]
    for g in v["guarantees"]:
        lines.append(f"| {g['id']} | {g['expected']} | {g['status']} | "
                     f"{'yes' if g['met'] else 'NO'} | {_md_cell(g['detail'])} |")
    for g in v["guarantees"]:
        if g["status"] != "fail" or not g["counterexamples"]:
            continue
        c = g["counterexamples"][0]
        lines += ["", f"### {g['id']}: counterexample", "", f"{_md_cell(c['why'])}", "",
                  f"msg `{c.get('msg') or '-'}`, trace `{c.get('trace') or '-'}`, "
                  f"rcpt `{c.get('rcpt') or '-'}`, hosts {', '.join(c.get('hosts', [])) or '-'}",
                  "", "| time | t (s) | host | event | details |", "|---|---:|---|---|---|"]
        for d in timeline(events, c):
            lines.append(f"| {fmt_t(d['t'])} | {d['t']:g} | {d['host']} | {d['kind']} | "
                         f"{_md_cell(_summary(d))} |")
    return "\n".join(lines) + "\n"

