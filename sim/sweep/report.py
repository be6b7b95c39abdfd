"""The sweep report: ``DIR/index.html`` and its PNG plots, from the dataset.

The plots an analyst wants first: for each varied setting, the fraction of
accepted recipients lost and the fraction bounced, one line per retry
preset when a preset is varied too, the mean over seeds with the spread
(lowest to highest run) shaded.  Under the plots, how often each guarantee
was met per value of each setting, and the runs that could not run.

Runs are read from the dataset alone (:func:`sim.sweep.dataset.read`), so
the report can be rebuilt at any time, also while a sweep is still going.
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from pandas.api.types import is_numeric_dtype

from sim.scenario.roles import RETRY_PRESETS
from mta.units import format_duration
# The run report's deterministic PNG writer (fixed metadata), shared on purpose.
from sim.report.plots import png_bytes, time_unit
from sim.sweep import dataset

INDEX = "index.html"
FRACTIONS = (("lost", "lost (silently)"), ("bounced", "bounced"))
_SHADES = ["#1565c0", "#c62828", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f"]
# Lines that coincide stay visible: each preset also has its own dash and marker.
_STYLES = [("-", "o"), ("--", "s"), (":", "^"), ("-.", "D")]


def preset_key(manifest: dict, frame) -> str | None:
    """The varied key whose values are all retry presets, if there is one."""
    for key in manifest["keys"]:
        vals = frame[key].dropna().unique() if key in frame else []
        if len(vals) and not is_numeric_dtype(frame[key]) and all(v in RETRY_PRESETS
                                                                   for v in vals):
            return key
    return None


def per_run(frame):
    """One row per run with its loss and bounce fractions of accepted."""
    runs = frame[frame["error"].isna()].drop_duplicates("run_id").copy()
    accepted = runs["accepted"].where(runs["accepted"] > 0)
    for count, _ in FRACTIONS:
        runs[f"{count}_fraction"] = runs[count] / accepted
    return runs


def fraction_png(runs, key: str, durations: bool, preset: str | None, count: str,
                 title: str) -> bytes:
    """``count``'s fraction of accepted against ``key``: mean over seeds, range shaded."""
    fig = Figure(figsize=(7, 3.8))
    ax = fig.add_subplot()
    numeric = is_numeric_dtype(runs[key])
    div, unit = time_unit(float(runs[key].max())) if numeric and durations else (1.0, "")
    groups = [(None, runs)] if preset is None or preset == key else \
        [(name, g) for name, g in runs.groupby(preset, sort=True)]
    for i, (name, g) in enumerate(groups):
        stats = g.groupby(key, sort=True)[f"{count}_fraction"].agg(["mean", "min", "max"])
        xs = [x / div for x in stats.index] if numeric else list(range(len(stats)))
        colour = _SHADES[i % len(_SHADES)]
        dash, mark = _STYLES[i % len(_STYLES)]
        ax.plot(xs, stats["mean"], linestyle=dash, marker=mark, color=colour, markersize=7 - i,
                label=f"{preset}={name}" if name is not None else "mean over seeds")
        ax.fill_between(xs, stats["min"], stats["max"], color=colour, alpha=0.18, linewidth=0)
        if not numeric:
            ax.set_xticks(xs, [str(x) for x in stats.index])
    ax.set_xlabel(f"{key} ({unit})" if unit else key)
    ax.set_ylabel(f"{title} / accepted")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{title.capitalize()} against {key}")
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return png_bytes(fig)


def write_sweep_report(out: Path, manifest: dict, varies) -> Path:
    """Write ``out/index.html`` and its plots; returns the page's path."""
    frame = dataset.read(out)
    body = [f"<h1>Sweep of {html.escape(manifest['scenario'])}</h1>",
            f"<p>{_plan_text(manifest)}</p>"]
    if frame.empty:
        body.append("<p>No run has finished yet.</p>")
        return _page(out, manifest, body)
    runs = per_run(frame)
    failed = frame[frame["error"].notna()].drop_duplicates("run_id")
    body.append(f"<p>{frame['run_id'].nunique()} of {manifest['runs']} runs in the dataset"
                f"{f', {len(failed)} could not run' if len(failed) else ''}; "
                f"dataset: <code>{dataset.DATASET}/</code> (Parquet, one part per run).</p>")
    preset = preset_key(manifest, frame)
    durations = {v.key: v.durations for v in varies}
    for v in varies:
        if v.key == preset and len(varies) > 1:
            continue          # it is the lines of the other plots
        body.append(f"<h2>{html.escape(v.key)}</h2>")
        if runs.empty:
            body.append("<p>No run finished with a verdict.</p>")
            continue
        for count, title in FRACTIONS:
            name = f"{_slug(v.key)}-{count}.png"
            (out / name).write_bytes(fraction_png(runs, v.key, durations[v.key], preset,
                                                  count, title))
            body.append(f'<img src="{name}" alt="{html.escape(title)} against '
                        f'{html.escape(v.key)}">')
        body.append(_met_table(frame, v, durations[v.key]))
    if len(failed):
        body.append("<h2>Runs that could not run</h2><ul>")
        body += [f"<li>{html.escape(r.run_id)} (seed {r.seed}): {html.escape(str(r.error))}</li>"
                 for r in failed.itertuples()]
        body.append("</ul>")
    return _page(out, manifest, body)


def _met_table(frame, vary, durations: bool) -> str:
    judged = frame[frame["guarantee"].notna()]
    if judged.empty:
        return "<p>No guarantee was judged.</p>"
    judged = judged.assign(undecided=~judged["decided"].astype(bool))
    table = judged.groupby(["guarantee", vary.key], sort=True).agg(
        met=("met", "sum"), runs=("met", "count"), undecided=("undecided", "sum"))
    values = sorted(judged[vary.key].unique())
    head = "".join(f"<th>{html.escape(_show(x, durations))}</th>" for x in values)
    lines = [f"<table><tr><th>guarantee met (runs)</th>{head}</tr>"]
    for gid in sorted(judged["guarantee"].unique()):
        cells = []
        for x in values:
            if (gid, x) in table.index:
                row = table.loc[(gid, x)]
                undecided = f" ({int(row['undecided'])} undecided)" if row["undecided"] else ""
                cells.append(f"<td>{int(row['met'])}/{int(row['runs'])}{undecided}</td>")
            else:
                cells.append("<td>-</td>")
        lines.append(f"<tr><td>{html.escape(gid)}</td>{''.join(cells)}</tr>")
    return "\n".join(lines + ["</table>"])


def _plan_text(manifest: dict) -> str:
    vary = "; ".join(html.escape(v) for v in manifest["vary"]) or "nothing varied"
    seeds = html.escape(manifest["seeds"] or "the scenario's seed")
    return (f"Scenario <code>{html.escape(manifest['scenario_file'])}</code>, varying "
            f"<code>{vary}</code>, seeds {seeds}: {manifest['runs']} runs.")


def _show(value: Any, durations: bool) -> str:
    if durations and isinstance(value, float):
        return format_duration(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _slug(key: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in key).strip("-")


def _page(out: Path, manifest: dict, body: list[str]) -> Path:
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em}"
             "img{display:block;margin:1em 0}")
    text = (f"<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>Sweep of {html.escape(manifest['scenario'])}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
    path = out / INDEX
    path.write_text(text, encoding="utf-8")
    return path
