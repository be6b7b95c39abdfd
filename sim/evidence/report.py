"""The report of a run: verdict.json, report.md, report.html.

Everything here is a projection of the event log: the scenario and seed
come from RunStarted, the expectations from the GuaranteeExpected events
the runner writes right after it, so ``mxsim report DIR`` rebuilds the same
bytes from ``events.jsonl`` alone.  Output is deterministic: sorted keys,
no wall-clock stamps, PNGs without version metadata.
"""
from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mta import events as E
from sim.evidence import plots
from sim.evidence.checks import run_check
from sim.evidence.checks.feed import percentile
from sim.evidence.log import canonical_dict, read_jsonl
from sim.evidence.projections import (
    counts as count_fates, lifecycles, link_periods, outcomes, queue_depths, run_bounds)

VERDICT = "verdict.json"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
_TIMELINE_MAX = 60    # events shown in one counterexample timeline


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


def expectations(events: list[E.Event]) -> list[E.GuaranteeExpected]:
    return [e for e in events if isinstance(e, E.GuaranteeExpected)]


def met(expected: str, status: str, decided: bool) -> bool:
    """An expectation is met when a ``holds`` check passes, or a
    ``violated`` one fails on evidence (an undecidable failure meets nothing)."""
    return (expected == "holds" and status == "pass") or \
        (expected == "violated" and status == "fail" and decided)


def build_verdict(events: list[E.Event]) -> dict[str, Any]:
    """The verdict.json contract of DESIGN.md (plus ``met``, ``decided``,
    ``params`` per guarantee and ``ok`` overall)."""
    started = next((e for e in events if isinstance(e, E.RunStarted)), None)
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


# --------------------------------------------------------------------------
# Counterexample timelines
# --------------------------------------------------------------------------

def _summary(d: dict[str, Any]) -> str:
    if d["kind"] == "repeated":
        return d["note"]
    skip = {"t", "host", "kind"}
    parts = []
    for k in sorted(d):
        if k in skip or d[k] in (None, "", [], {}):
            continue
        v = d[k]
        if isinstance(v, list):
            v = ",".join(map(str, v))
        parts.append(f"{k}={v}")
    return " ".join(parts)


def timeline(events: list[E.Event], c: dict[str, Any]) -> list[dict[str, Any]]:
    """All events of the counterexample's message (by trace, and by msg on
    its host), plus the events the check named, in time order."""
    rows: dict[str, tuple[int, dict[str, Any]]] = {}
    trace, msg = c.get("trace"), c.get("msg")
    named = {json.dumps(d, sort_keys=True) for d in c.get("events", [])}
    stamps = {(d["t"], d["host"], d["kind"]) for d in c.get("events", [])}
    for seq, ev in enumerate(events):
        mine = (trace and getattr(ev, "trace", None) == trace) or \
            (trace and getattr(ev, "about_trace", None) == trace) or \
            (msg and getattr(ev, "msg", None) == msg)
        if not mine and (float(ev.t), ev.host, ev.kind) not in stamps:
            continue     # cheap filter: canonical dicts only for candidates
        d = canonical_dict(ev)
        key = json.dumps(d, sort_keys=True)
        if mine or key in named:
            rows.setdefault(key, (seq, d))
    # Log order within one instant: that is the order things happened.
    out = [d for _, d in sorted(rows.values(), key=lambda sd: (sd[1]["t"], sd[0]))]
    out = condense_rounds(out)
    if len(out) > _TIMELINE_MAX:
        # Keep both ends: how it started, and how it ended (the give-up).
        half = _TIMELINE_MAX // 2
        gap = {"t": out[half]["t"], "host": out[half]["host"], "kind": "repeated",
               "note": f"{len(out) - 2 * half} events until {fmt_t(out[-half]['t'])} left out"}
        out = out[:half] + [gap] + out[-half:]
    return out


def _round_key(attempt: dict[str, Any], deferred: dict[str, Any]) -> tuple | None:
    """What makes two delivery rounds "the same" in a timeline."""
    if attempt["kind"] != "attempt_started" or deferred["kind"] != "deferred":
        return None
    return (attempt["host"], attempt.get("msg"), attempt.get("dest_host"),
            deferred.get("rcpt"), deferred.get("code"), deferred.get("text"))


def condense_rounds(rows: list[dict[str, Any]], at_least: int = 4) -> list[dict[str, Any]]:
    """Collapse runs of identical delivery rounds (an attempt, then the same
    deferral) into first round, one summary row, last round.

    A sender retrying every 30 minutes for five days would otherwise fill
    the timeline with hundreds of rows that say the same thing.
    """
    out: list[dict[str, Any]] = []
    i, n = 0, len(rows)
    while i < n:
        key = _round_key(rows[i], rows[i + 1]) if i + 1 < n else None
        j = i
        while key is not None and j + 1 < n and _round_key(rows[j], rows[j + 1]) == key:
            j += 2
        rounds = (j - i) // 2
        if key is None or rounds < at_least:
            out.append(rows[i])
            i += 1
            continue
        first_mid, last_mid = rows[i + 2], rows[j - 3]
        out += rows[i:i + 2]
        out.append({"t": first_mid["t"], "host": first_mid["host"], "kind": "repeated",
                    "note": f"{rounds - 2} more delivery rounds to {key[2]} until "
                            f"{fmt_t(last_mid['t'])}, each deferred: {key[4]} {key[5]}"})
        out += rows[j - 2:j]
        i = j
    return out


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


# --------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------

_COUNT_KEYS = ["accepted", "delivered", "bounced", "discarded", "queued", "relayed_out",
               "lost", "duplicates", "dsns"]


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


# --------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------

_CSS = """body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;margin:2em;max-width:72em;
color:#222}table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #bbb;
padding:.25em .6em;font-size:.9em;vertical-align:top}th{background:#eee}
td.num{text-align:right}.pass{color:#2e7d32}.fail{color:#c62828}.no{background:#fde0e0}
img{max-width:100%;border:1px solid #ddd;margin:.5em 0}code{font-size:.9em}"""


def _img(png: bytes, alt: str) -> str:
    return (f'<img alt="{html.escape(alt)}" src="data:image/png;base64,'
            f'{base64.b64encode(png).decode("ascii")}">')


def figures(verdict: dict[str, Any], events: list[E.Event]) -> dict[str, bytes]:
    """The report's PNGs by name (deterministic bytes)."""
    start, end = verdict["t_start"], verdict["t_end"]
    outs = [o for o in outcomes(events) if not o.is_dsn]
    lat = [o.latency for o in outs if o.latency is not None]
    pcts = {f"p{q}": percentile(lat, q) for q in (50, 90, 99)} if lat else {}
    periods = link_periods(events)
    return {
        "fates": plots.fates_png(verdict["counts"]),
        "latency": plots.latency_png(outs, pcts),
        "queues": plots.queues_png(queue_depths(events), periods, start, end),
        "links": plots.links_png(periods, start, end),
    }


def render_html(verdict: dict[str, Any], events: list[E.Event],
                figs: dict[str, bytes]) -> str:
    v, esc = verdict, html.escape
    outs = [o for o in outcomes(events) if not o.is_dsn]
    lat = [o.latency for o in outs if o.latency is not None]
    p = []
    p.append(f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>mxsim report: "
             f"{esc(v['scenario'])}</title><style>{_CSS}</style></head><body>")
    p.append(f"<h1>mxsim report: {esc(v['scenario'] or '(unnamed run)')}</h1>")
    p.append(f"<p>seed {esc(str(v['seed']))}; simulated time {esc(fmt_t(v['t_start']))} to "
             f"{esc(fmt_t(v['t_end']))}; expectations met: "
             f"<b class=\"{'pass' if v['ok'] else 'fail'}\">"
             f"{sum(g['met'] for g in v['guarantees'])}/{len(v['guarantees'])}</b></p>")
    p.append("<h2>Recipients by fate</h2><table id=\"counts\"><tr><th>fate</th>"
             "<th>recipients</th></tr>")
    p += [f"<tr><td>{k}</td><td class=\"num\">{v['counts'].get(k, 0)}</td></tr>"
          for k in _COUNT_KEYS]
    p.append("</table>")
    p.append(_img(figs["fates"], "recipients by fate"))
    p.append("<h2>Hosts</h2><table id=\"hosts\"><tr><th>host</th>"
             + "".join(f"<th>{c}</th>" for c in _HOST_COLS) + "</tr>")
    for r in host_rows(events):
        p.append(f"<tr><td>{esc(r['host'])}</td>"
                 + "".join(f"<td class=\"num\">{r[c]}</td>" for c in _HOST_COLS) + "</tr>")
    p.append("</table>")
    rows, total = undelivered(events)
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
    p.append("<h2>Guarantees</h2><table id=\"guarantees\"><tr><th>guarantee</th>"
             "<th>expected</th><th>status</th><th>met</th><th>detail</th></tr>")
    for g in v["guarantees"]:
        p.append(f"<tr class=\"{'' if g['met'] else 'no'}\"><td><a href=\"#cx-{esc(g['id'])}\">"
                 f"{esc(g['id'])}</a></td><td>{esc(g['expected'])}</td>"
                 f"<td class=\"{g['status']}\">{g['status']}</td>"
                 f"<td>{'yes' if g['met'] else 'NO'}</td><td>{esc(g['detail'])}</td></tr>")
    p.append("</table>")
    p.append("<h2>Delivery latency</h2>")
    if lat:
        p.append("<table id=\"latency\"><tr><th>percentile</th><th>latency (s)</th></tr>")
        for q in (50, 90, 99, 100):
            p.append(f"<tr><td>p{q}</td><td class=\"num\">{percentile(lat, q):.3f}</td></tr>")
        p.append("</table>")
    p.append(_img(figs["latency"], "delivery latency CDF"))
    p.append("<h2>Queues</h2>" + _img(figs["queues"], "queue depth per host"))
    p.append("<h2>Links</h2>" + _img(figs["links"], "link timeline"))
    for g in v["guarantees"]:
        if g["status"] != "fail":
            continue
        p.append(f"<h2 id=\"cx-{esc(g['id'])}\">{esc(g['id'])}: "
                 f"{'undecidable' if not g['decided'] else 'counterexample'}</h2>")
        p.append(f"<p>{esc(g['detail'])}</p>")
        if not g["counterexamples"]:
            continue
        c = g["counterexamples"][0]
        p.append(f"<p><b>{esc(c['why'])}</b><br>msg <code>{esc(c.get('msg') or '-')}</code>, "
                 f"trace <code>{esc(c.get('trace') or '-')}</code>, rcpt "
                 f"<code>{esc(c.get('rcpt') or '-')}</code>, hosts "
                 f"{esc(', '.join(c.get('hosts', [])) or '-')}</p>")
        p.append("<table class=\"timeline\"><tr><th>time</th><th>t (s)</th><th>host</th>"
                 "<th>event</th><th>details</th></tr>")
        for d in timeline(events, c):
            p.append(f"<tr><td>{esc(fmt_t(d['t']))}</td><td class=\"num\">{d['t']:g}</td>"
                     f"<td>{esc(d['host'])}</td><td>{esc(d['kind'])}</td>"
                     f"<td>{esc(_summary(d))}</td></tr>")
        p.append("</table>")
        if len(g["counterexamples"]) > 1:
            p.append(f"<p>{len(g['counterexamples']) - 1} more counterexamples in "
                     f"verdict.json.</p>")
    p.append("</body></html>\n")
    return "\n".join(p)


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
