"""The HTML report (report.html): the Markdown report's tables plus latency
percentiles, the figures (inline PNGs) and every failure's counterexample."""
from __future__ import annotations

import base64
import html

from sim.evidence.model import Evidence, percentile
from sim.evidence.queue_replay import queue_depths
from sim.evidence.verdict import Verdict
from sim.report import plots
from sim.report.swimlane import report_lanes
from sim.report.tables import HOST_COLUMNS, fmt_t, host_rows, undelivered
from sim.report.timeline import row_details, timeline

CSS = """body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;margin:2em;max-width:72em;
color:#222}table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #bbb;
padding:.25em .6em;font-size:.9em;vertical-align:top}th{background:#eee}
td.num{text-align:right}.pass{color:#2e7d32}.fail{color:#c62828}.no{background:#fde0e0}
img{max-width:100%;border:1px solid #ddd;margin:.5em 0}code{font-size:.9em}"""


def img(png: bytes, alt: str) -> str:
    """An ``<img>`` with the PNG inline (the report is one self-contained file)."""
    return (f'<img alt="{html.escape(alt)}" src="data:image/png;base64,'
            f'{base64.b64encode(png).decode("ascii")}">')


def figures(v: Verdict, evidence: Evidence) -> dict[str, bytes]:
    """The report's PNGs by name (deterministic bytes)."""
    lat = evidence.latencies
    pcts = {f"p{q}": percentile(lat, q) for q in (50, 90, 99)} if lat else {}
    periods = evidence.link_periods
    return {
        "fates": plots.fates_png(v.counts),
        "latency": plots.latency_png(lat, pcts),
        "queues": plots.queues_png(queue_depths(evidence.events), periods, v.t_start, v.t_end),
        "links": plots.links_png(periods, v.t_start, v.t_end),
    }


def render_html(v: Verdict, evidence: Evidence, figs: dict[str, bytes]) -> str:
    """The text of report.html, with the ``figs`` of :func:`figures` inline."""
    esc = html.escape
    lat = evidence.latencies
    p = []
    p.append(f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>mxsim report: "
             f"{esc(v.scenario)}</title><style>{CSS}</style></head><body>")
    p.append(f"<h1>mxsim report: {esc(v.scenario or '(unnamed run)')}</h1>")
    p.append(f"<p>seed {esc(str(v.seed))}; simulated time {esc(fmt_t(v.t_start))} to "
             f"{esc(fmt_t(v.t_end))}; expectations met: "
             f"<b class=\"{'pass' if v.ok else 'fail'}\">"
             f"{v.met_count}/{len(v.guarantees)}</b></p>")
    p.append("<h2>Recipients by fate</h2><table id=\"counts\"><tr><th>fate</th>"
             "<th>recipients</th></tr>")
    p += [f"<tr><td>{k}</td><td class=\"num\">{n}</td></tr>" for k, n in v.counts.items()]
    p.append("</table>")
    p.append(img(figs["fates"], "recipients by fate"))
    p.append("<h2>Hosts</h2><table id=\"hosts\"><tr><th>host</th>"
             + "".join(f"<th>{c}</th>" for c in HOST_COLUMNS) + "</tr>")
    for r in host_rows(evidence):
        p.append(f"<tr><td>{esc(r['host'])}</td>"
                 + "".join(f"<td class=\"num\">{r[c]}</td>" for c in HOST_COLUMNS) + "</tr>")
    p.append("</table>")
    rows, total = undelivered(evidence)
    p.append(f"<h2>Recipients not delivered ({total})</h2>")
    if rows:
        p.append("<table id=\"undelivered\"><tr><th>trace</th><th>rcpt</th><th>fate</th>"
                 "<th>path</th><th>accepted</th><th>fate at</th><th>why</th></tr>")
        for r in rows:
            p.append(f"<tr><td><code>{esc(r['trace'])}</code></td><td>{esc(r['rcpt'])}</td>"
                     f"<td>{esc(r['fate'])}</td><td>{esc(r['path'])}</td>"
                     f"<td>{esc(fmt_t(r['accepted']))}</td><td>{esc(fmt_t(r['at']))}</td>"
                     f"<td>{esc(r['why'])}</td></tr>")
        p.append("</table>")
        if total > len(rows):
            p.append(f"<p>{total - len(rows)} more not shown.</p>")
    lanes = report_lanes(evidence, rows)
    p.append("<h2 id=\"timelines\">Timelines</h2><p>Any recipient, delivered or not, can be "
             "followed across hosts with <code>mxsim trace REPORT_DIR RECIPIENT</code> (or a "
             "queue ID or Message-ID).</p>")
    for trace, rcpt, lane in lanes:
        p.append(f"<details><summary>{esc(rcpt)} (<code>{esc(trace)}</code>)</summary>"
                 f"<pre class=\"lane\">{esc(lane)}</pre></details>")
    p.append("<h2>Guarantees</h2><table id=\"guarantees\"><tr><th>guarantee</th>"
             "<th>expected</th><th>status</th><th>met</th><th>detail</th></tr>")
    for g in v.guarantees:
        p.append(f"<tr class=\"{'' if g.met else 'no'}\"><td><a href=\"#cx-{esc(g.id)}\">"
                 f"{esc(g.id)}</a></td><td>{esc(g.expected)}</td>"
                 f"<td class=\"{g.status}\">{g.status}</td>"
                 f"<td>{'yes' if g.met else 'NO'}</td><td>{esc(g.detail)}</td></tr>")
    p.append("</table>")
    p.append("<h2>Delivery latency</h2>")
    if lat:
        p.append("<table id=\"latency\"><tr><th>percentile</th><th>latency (s)</th></tr>")
        for q in (50, 90, 99, 100):
            p.append(f"<tr><td>p{q}</td><td class=\"num\">{percentile(lat, q):.3f}</td></tr>")
        p.append("</table>")
    p.append(img(figs["latency"], "delivery latency CDF"))
    p.append("<h2>Queues</h2>" + img(figs["queues"], "queue depth per host"))
    p.append("<h2>Links</h2>" + img(figs["links"], "link timeline"))
    for g in v.guarantees:
        if g.status != "fail":
            continue
        p.append(f"<h2 id=\"cx-{esc(g.id)}\">{esc(g.id)}: "
                 f"{'undecidable' if not g.decided else 'counterexample'}</h2>")
        p.append(f"<p>{esc(g.detail)}</p>")
        if not g.counterexamples:
            continue
        c = g.counterexamples[0]
        p.append(f"<p><b>{esc(c['why'])}</b><br>msg <code>{esc(c.get('msg') or '-')}</code>, "
                 f"trace <code>{esc(c.get('trace') or '-')}</code>, rcpt "
                 f"<code>{esc(c.get('rcpt') or '-')}</code>, hosts "
                 f"{esc(', '.join(c.get('hosts', [])) or '-')}</p>")
        p.append("<table class=\"timeline\"><tr><th>time</th><th>t (s)</th><th>host</th>"
                 "<th>event</th><th>details</th></tr>")
        for d in timeline(evidence.events, c):
            p.append(f"<tr><td>{esc(fmt_t(d['t']))}</td><td class=\"num\">{d['t']:g}</td>"
                     f"<td>{esc(d['host'])}</td><td>{esc(d['kind'])}</td>"
                     f"<td>{esc(row_details(d))}</td></tr>")
        p.append("</table>")
        if len(g.counterexamples) > 1:
            p.append(f"<p>{len(g.counterexamples) - 1} more counterexamples in "
                     f"verdict.json.</p>")
    p.append("</body></html>\n")
    return "\n".join(p)
