"""The HTML report (report.html): the Markdown report's sections, in the
same order, plus the figures (inline PNGs) and every failure's counterexample."""
from __future__ import annotations

import base64
import html

from mta.events import Released
from sim.evidence.model import Evidence, percentile
from sim.evidence.verdict import Verdict
from sim.report import plots
from sim.report.about import guarantee_rows, topology, waived_rows
from sim.report.swimlane import report_lanes
from sim.report.tables import HOST_COLUMNS, fmt_t, host_rows, loss_causes, undelivered
from sim.report.timeline import row_details, timeline
from sim.report.usage import usage_rows

CSS = """body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;margin:2em;max-width:72em;
color:#222}table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #bbb;
padding:.25em .6em;font-size:.9em;vertical-align:top}th{background:#eee}
td.num{text-align:right}.pass{color:#2e7d32}.fail{color:#c62828}.no{background:#fde0e0}
img{max-width:100%;border:1px solid #ddd;margin:.5em 0}code{font-size:.9em}
td.meaning{min-width:18em}td.params code{word-break:break-word}pre.lane{font-size:.8em}"""


def img(png: bytes, alt: str) -> str:
    """An ``<img>`` with the PNG inline (the report is one self-contained file)."""
    return (f'<img alt="{html.escape(alt)}" src="data:image/png;base64,'
            f'{base64.b64encode(png).decode("ascii")}">')


def figures(v: Verdict, evidence: Evidence) -> dict[str, bytes]:
    """The report's PNGs by name (deterministic bytes)."""
    lat = evidence.latencies
    pcts = {f"p{q}": percentile(lat, q) for q in (50, 90, 99)} if lat else {}
    periods = evidence.link_periods
    releases = [(e.t, e.host, e.trigger) for e in evidence.of(Released)]
    return {
        "fates": plots.fates_png(v.counts),
        "latency": plots.latency_png(lat, pcts),
        "queues": plots.queues_png(evidence.queue_depths, periods, v.t_start, v.t_end,
                                   releases),
        "links": plots.links_png(periods, v.t_start, v.t_end, releases),
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
    description, hosts, mx = topology(evidence)
    if description or hosts:
        p.append("<h2>The run</h2>")
        if description:
            p.append(f"<p>{esc(description)}</p>")
        if hosts:
            p.append("<table id=\"topology\"><tr><th>host</th><th>address</th><th>link</th>"
                     "<th>access</th><th>runs</th></tr>")
            p += [f"<tr><td>{esc(h['name'])}</td><td>{esc(h['address'])}</td>"
                  f"<td>{esc(h['link'])}</td><td>{esc(h['access'] or '-')}</td>"
                  f"<td>{esc(', '.join(h['roles']) or '-')}</td></tr>" for h in hosts]
            p.append("</table>")
        if mx:
            p.append("<table id=\"mx\"><tr><th>domain</th><th>MX (preference host)</th></tr>")
            p += [f"<tr><td>{esc(d)}</td><td>{esc(', '.join(f'{q} {x}' for q, x in recs))}"
                  f"</td></tr>" for d, recs in mx.items()]
            p.append("</table>")
    p.append("<h2>Recipients by fate</h2><p>End to end: one count per recipient of each "
             "message, whatever hops it took.</p><table id=\"counts\"><tr><th>fate</th>"
             "<th>recipients</th></tr>")
    p += [f"<tr><td>{k}</td><td class=\"num\">{n}</td></tr>" for k, n in v.counts.items()]
    p.append("</table>")
    shown = [k for k, n in v.counts.items() if n and k not in ("accepted", "dsns")]
    if len(shown) > 1:      # one bar says nothing the table does not
        p.append(img(figs["fates"], "recipients by fate"))
    p.append("<h2>Hosts</h2><p>Per hop: one count per recipient copy a host took.</p>"
             "<table id=\"hosts\"><tr><th>host</th>"
             + "".join(f"<th>{c}</th>" for c in HOST_COLUMNS) + "</tr>")
    for r in host_rows(evidence):
        p.append(f"<tr><td>{esc(r['host'])}</td>"
                 + "".join(f"<td class=\"num\">{r[c]}</td>" for c in HOST_COLUMNS) + "</tr>")
    p.append("</table>")
    rows, total = undelivered(evidence)
    causes = loss_causes(evidence)
    if causes:
        p.append("<h2>Not delivered, by cause</h2><table id=\"causes\"><tr><th>recipients"
                 "</th><th>fate</th><th>cause</th></tr>")
        p += [f"<tr><td class=\"num\">{n}</td><td>{esc(fate)}</td><td>{esc(why or '-')}</td>"
              f"</tr>" for n, fate, why in causes]
        p.append("</table>")
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
             "<th>what it checks</th><th>parameters</th><th>why here</th><th>expected</th>"
             "<th>result</th><th>evidence</th><th>met</th><th>detail</th></tr>")
    for r in guarantee_rows(v, evidence):
        name = (f"<a href=\"#{esc(r['anchor'])}\">{esc(r['id'])}</a>" if r["anchor"]
                else esc(r["id"]))
        p.append(f"<tr class=\"{'' if r['met'] else 'no'}\"><td>{name}</td>"
                 f"<td class=\"meaning\">{esc(r['meaning'])}</td>"
                 f"<td class=\"params\"><code>{esc(r['params'])}</code></td>"
                 f"<td>{esc(r['why'] or '-')}</td><td>{esc(r['expected'])}</td>"
                 f"<td class=\"{esc(r['result'])}\">{esc(r['result'])}</td>"
                 f"<td>{esc(r['evidence'])}</td>"
                 f"<td>{'yes' if r['met'] else 'NO'}</td><td>{esc(r['detail'])}</td></tr>")
    p.append("</table>")
    waived = waived_rows(evidence)
    if waived:
        p.append("<p>Not expected here (waived by the scenario):</p><ul id=\"waived\">")
        p.extend(f"<li><b>{esc(g)}</b> ({esc(m)}): {esc(why)}</li>" for g, m, why in waived)
        p.append("</ul>")
    p.append("<h2>Delivery latency</h2>")
    if lat:
        p.append("<table id=\"latency\"><tr><th>percentile</th><th>latency</th></tr>")
        for q in (50, 90, 99, 100):
            p.append(f"<tr><td>p{q}</td><td class=\"num\">{esc(fmt_t(percentile(lat, q)))}"
                     f"</td></tr>")
        p.append("</table>")
        p.append(img(figs["latency"], "delivery latency CDF"))
    else:
        p.append("<p>No recipient was delivered to a mailbox.</p>")
    usage = usage_rows(evidence)
    if usage:
        p.append("<h2>Usage per account</h2><table id=\"usage\"><tr><th>relay</th>"
                 "<th>account</th><th>via</th><th>messages</th><th>recipients</th>"
                 "<th>bytes</th><th>busiest hour</th><th>hourly (messages/recipients)</th>"
                 "<th>flag</th></tr>")
        for u in usage:
            p.append(f"<tr class=\"{'no' if u['flag'] else ''}\"><td>{esc(u['host'])}</td>"
                     f"<td>{esc(u['account'])}</td><td>{esc(u['how'])}</td>"
                     f"<td class=\"num\">{u['messages']}</td>"
                     f"<td class=\"num\">{u['recipients']}</td>"
                     f"<td class=\"num\">{u['bytes']}</td>"
                     f"<td>{u['peak_hour']} ({u['peak_messages']})</td>"
                     f"<td>{esc(u['hourly'])}</td><td>{esc(u['flag'] or '-')}</td></tr>")
        p.append("</table>")
    p.append("<h2>Queues</h2>" + (img(figs["queues"], "queue depth per host")
                                  if evidence.queue_depths else "<p>No mail was queued.</p>"))
    p.append("<h2>Links</h2>" + (img(figs["links"], "link timeline") if evidence.link_periods
                                 else "<p>Every link stayed up.</p>"))
    for i, g in enumerate(v.guarantees):
        if g.status != "fail":
            continue
        p.append(f"<h2 id=\"cx-{i}-{esc(g.id)}\">{esc(g.id)}: "
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
