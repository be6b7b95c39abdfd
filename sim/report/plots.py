"""The report's figures, as PNG bytes (matplotlib, Agg, no pyplot state).

Every figure is rendered deterministically: fixed size and DPI, the
bundled DejaVu font, and ``metadata={"Software": None}`` so the PNG holds
no version string; the same log gives the same bytes.
"""
from __future__ import annotations

import io
from typing import Any, Iterable

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from sim.evidence.lifecycle import Counts
from sim.evidence.links import LinkPeriod

_COLOURS = {"delivered": "#2e7d32", "bounced": "#ef6c00", "discarded": "#6a1b9a",
            "queued": "#1565c0", "relayed_out": "#00838f", "lost": "#c62828",
            "duplicates": "#795548"}
_MAX_HOSTS = 8
_SHADES = ["#c62828", "#6a1b9a", "#ef6c00", "#00838f", "#558b2f", "#ad1457"]


def time_unit(span: float) -> tuple[float, str]:
    """(divisor, label) so a run of ``span`` seconds reads naturally."""
    if span > 2 * 86400:
        return 86400.0, "d"
    if span > 2 * 3600:
        return 3600.0, "h"
    if span > 120:
        return 60.0, "min"
    return 1.0, "s"


def png_bytes(fig: Figure) -> bytes:
    """The PNG of ``fig``, without the metadata that would change with the
    matplotlib version (re-reporting stays byte-identical)."""
    canvas = FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    # The figure, its artists and its canvas refer to each other: garbage
    # only for the cycle collector, which is paused while a report is built
    # (collector_paused), so every figure's artists and pixel buffer would
    # stay until the report is done.  Drop them now.
    fig.clear()
    canvas.renderer = None
    return buf.getvalue()


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=12)
    ax.set_xticks([])
    ax.set_yticks([])


def fates_png(counts: Counts) -> bytes:
    """Bar chart: recipients by end-to-end fate."""
    # Every count but the totals: accepted is in the title, DSNs are not recipients.
    keys = [k for k in counts.keys() if k not in ("accepted", "dsns")]
    fig = Figure(figsize=(7, 3.6))
    ax = fig.add_subplot()
    vals = [getattr(counts, k) for k in keys]
    bars = ax.bar(keys, vals, color=[_COLOURS[k] for k in keys])
    for b, v in zip(bars, vals):
        ax.annotate(str(v), (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom",
                    fontsize=9)
    ax.set_ylabel("recipients (count)")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"Recipients by fate (accepted: {counts.accepted})")
    ax.tick_params(axis="x", labelrotation=20)
    fig.tight_layout()
    return png_bytes(fig)


def latency_png(latencies: list[float], pcts: dict[str, float]) -> bytes:
    """Empirical CDF of delivery latency with its percentiles marked."""
    lat = sorted(latencies)
    fig = Figure(figsize=(7, 3.6))
    ax = fig.add_subplot()
    if not lat:
        _empty(ax, "no delivered recipients")
        ax.set_title("Delivery latency (acceptance to mailbox)")
        return png_bytes(fig)
    div, unit = time_unit(max(lat))
    # Start at (0, 0) and run on past the slowest, so even one delivery shows a step.
    xs = [0.0] + [v / div for v in lat] + [max(lat) / div * 1.05 or 1.0]
    ys = [0.0] + [(i + 1) / len(lat) for i in range(len(lat))] + [1.0]
    ax.step(xs, ys, where="post", color="#1565c0")
    labels: dict[float, list[str]] = {}
    for name, v in pcts.items():
        labels.setdefault(v, []).append(name)
    for v, names in sorted(labels.items()):
        ax.axvline(v / div, linestyle="--", linewidth=0.8, color="#555555")
        ax.annotate(f"{'/'.join(names)} {v / div:.3g} {unit}", (v / div, 0.5), rotation=90,
                    fontsize=8, va="center", ha="right")
    ax.set_xlabel(f"latency ({unit})")
    ax.set_ylabel("fraction of delivered recipients")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Delivery latency CDF (n={len(lat)})")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return png_bytes(fig)


#: Marker colour per release trigger (ETRN, finger, probe).
_RELEASE = {"etrn": "#6a1b9a", "finger": "#ef6c00", "probe": "#00838f"}


def _mark_releases(ax: Any, releases: Iterable[tuple[float, str, str]], div: float,
                   host: str | None = None) -> set[str]:
    """Dotted lines where held mail was released (on ``host``, or any);
    returns the triggers drawn, for the legend."""
    by_trigger: dict[str, list[float]] = {}
    for t, h, trigger in releases:
        if host is None or h == host:
            by_trigger.setdefault(trigger, []).append(t / div)
    # One line collection per trigger, not one axvline per release: a week of
    # dial-up customers sending ETRN is thousands of releases.
    for trigger, xs in by_trigger.items():
        ax.vlines(xs, 0, 1, colors=_RELEASE.get(trigger, "#555"), linestyles=":", lw=1,
                  transform=ax.get_xaxis_transform())
    return set(by_trigger)


def _release_legend(ax: Any, triggers: set[str], extra: list | None = None) -> None:
    from matplotlib.lines import Line2D
    handles = list(extra or [])
    handles += [Line2D([], [], color=_RELEASE.get(k, "#555"), ls=":", label=f"released by {k}")
                for k in sorted(triggers)]
    if handles:
        ax.legend(handles=handles, loc="upper right", fontsize=7, framealpha=0.8)


def queues_png(depths: dict[str, list[tuple[float, int]]], periods: list[LinkPeriod],
               start: float, end: float,
               releases: Iterable[tuple[float, str, str]] = ()) -> bytes:
    """Queue depth per host over time, link-down periods of that host shaded,
    releases of held mail (ETRN, finger, probe) marked."""
    releases = list(releases)
    hosts = sorted(depths, key=lambda h: (-max(d for _, d in depths[h]), h))[:_MAX_HOSTS]
    hosts.sort()
    div, unit = time_unit(end - start)
    fig = Figure(figsize=(8, 1.2 + 1.6 * max(1, len(hosts))))
    if not hosts:
        ax = fig.add_subplot()
        _empty(ax, "no queued mail")
        ax.set_title("Queue depth per host")
        return png_bytes(fig)
    axes = fig.subplots(len(hosts), 1, sharex=True, squeeze=False)[:, 0]
    # Every link's outages are shaded on every host's plot, one colour per
    # link: a queue usually grows on one host while *another* host is down.
    links = sorted({(p.host, p.link) for p in periods if p.state == "down"})
    shade = {k: _SHADES[i % len(_SHADES)] for i, k in enumerate(links)}
    spans: dict[tuple[str, str], list[tuple[float, float]]] = {k: [] for k in links}
    for p in periods:
        if p.state == "down":
            spans[(p.host, p.link)].append((p.start / div, p.end / div))
    outages = [[(a, 0), (a, 1), (b, 1), (b, 0)] for link in links for a, b in spans[link]]
    colours = [shade[link] for link in links for _ in spans[link]]
    drawn: set[str] = set()
    for ax, host in zip(axes, hosts):
        steps = depths[host]
        xs = [start / div] + [t / div for t, _ in steps] + [end / div]
        ys = [0] + [d for _, d in steps] + [steps[-1][1]]
        # One collection for every outage, not one axvspan each (nor one
        # collection per link): a world of dial-up customers has thousands
        # of outages on hundreds of links, and artists cost the report more
        # than the judging.  Drawn in the same order, so the same pixels.
        ax.add_collection(PolyCollection(
            outages, facecolors=colours, alpha=0.18, linewidths=0,
            transform=ax.get_xaxis_transform()), autolim=False)
        ax.step(xs, ys, where="post", color="#1565c0")
        drawn |= _mark_releases(ax, releases, div, host)
        ax.set_ylabel("recipients", fontsize=8)
        ax.set_title(host, fontsize=9, loc="left")
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel(f"simulated time ({unit}); shaded: a link down")
    fig.suptitle("Queue depth per host")
    fig.tight_layout()
    from matplotlib.patches import Patch
    handles = [Patch(color=shade[k], alpha=0.4, label=f"{k[0]} down") for k in links[:6]]
    _release_legend(axes[0], drawn, handles)
    return png_bytes(fig)


#: Rows of the link timeline; a world with more links shows those down longest.
MAX_LINKS = 40


def links_png(periods: list[LinkPeriod], start: float, end: float,
              releases: Iterable[tuple[float, str, str]] = ()) -> bytes:
    """One row per link: up periods green, down periods red; releases of
    held mail marked across the rows (they follow a customer's link-up).
    At most :data:`MAX_LINKS` rows: those of the links down longest (the
    title says how many there are), in name order."""
    every = sorted({(p.host, p.link) for p in periods})
    down: dict[tuple[str, str], float] = dict.fromkeys(every, 0.0)
    for p in periods:
        if p.state == "down":
            down[(p.host, p.link)] += p.end - p.start
    links = sorted(sorted(every, key=lambda k: (-down[k], k))[:MAX_LINKS])
    div, unit = time_unit(end - start)
    fig = Figure(figsize=(8, max(2.4, 1.2 + 0.45 * len(links))))
    ax = fig.add_subplot()
    if not links:
        _empty(ax, "no link changes in the log")
        ax.set_title("Link timeline")
        return png_bytes(fig)
    row = {k: i for i, k in enumerate(links)}
    # One collection for every period of every row shown, in the order the
    # rows and periods come (so neighbours overlap as before), not one
    # broken_barh per period: thousands of outages made this figure cost
    # more than judging the run.
    bars = sorted((row[(p.host, p.link)], n, p) for n, p in enumerate(periods)
                  if (p.host, p.link) in row)
    colours = ["#2e7d32" if p.state == "up" else "#c62828" for _, _, p in bars]
    boxes = []
    for i, _, p in bars:
        x, w = p.start / div, max(p.end - p.start, 0) / div
        boxes.append([(x, i - 0.4), (x, i + 0.4), (x + w, i + 0.4), (x + w, i - 0.4)])
    ax.add_collection(PolyCollection(boxes, facecolors=colours, edgecolors=colours))
    ax.set_yticks(range(len(links)))
    ax.set_yticklabels([f"{h} ({lk})" if lk != h else h for h, lk in links], fontsize=8)
    # The rows and nothing else: the default 5% margin was two empty rows of
    # release marks above and below a 40-row timeline.
    ax.set_ylim(-0.6, len(links) - 0.4)
    _release_legend(ax, _mark_releases(ax, releases, div))
    ax.set_xlabel(f"simulated time ({unit}); green up, red down")
    ax.set_xlim(start / div, max(end, start + 1e-9) / div)
    shown = "" if len(links) == len(every) else \
        f" ({len(links)} of {len(every)} links: those down longest)"
    ax.set_title("Link timeline" + shown)
    fig.tight_layout()
    return png_bytes(fig)
