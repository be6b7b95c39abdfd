"""Where a run's CPU goes, by layer: self time from a cProfile, summed per layer.

A layer is a part of the stack we can name and act on: the simulated loop and
network (``sim/world``, SimPy under it), asyncio, aiosmtpd, aiosmtplib, the
stdlib email package, dnspython, the mail components (``mta/``), the event log
and its codec (``mta/events``), the actors and wiring that drive a world,
judging (``sim/evidence``) and the report (``sim/report`` with matplotlib,
numpy, pandas, PIL).

Self time of what belongs to no layer of its own (built-in functions, C
methods, and the generic stdlib: ``json``, ``re``, ``contextlib``,
``dataclasses``, ...; also ``mta/maillog.py``, which both the judge and the
report call) is charged to the layers of its callers, in proportion to the
time each caller spent in it (cProfile records that per caller edge); a
generic caller passes its share on to its own callers the same way.  So
``json.encoder`` called from the codec counts as the event log, and
``str.join`` called from aiosmtpd counts as aiosmtpd.

The cyclic garbage collector runs inside whatever function allocates when a
threshold is crossed, so its time hides in the table;
:func:`collector_seconds` measures it apart with ``gc.callbacks``.

    python benchmarks/layers.py PROFILE      # the table of a saved profile
"""
from __future__ import annotations

import gc
import pstats
import sys
import sysconfig
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
_STDLIB = sysconfig.get_paths()["stdlib"] + "/"

Key = tuple[str, int, str]

# (layer, substring of a path inside the project), first match wins.
_OURS = (("event log and codec (mta/events)", "mta/events/"),
         (None, "mta/maillog.py"),
         ("simulated loop, network, DNS (sim/world)", "sim/world/"),
         ("mail components (mta/)", "mta/"),
         ("judge (sim/evidence)", "sim/evidence/"),
         ("report (sim/report)", "sim/report/"),
         ("actors, wiring, runner, scenario (sim/)", "sim/"))
# (layer, first directory under site-packages or the stdlib).
_PACKAGES = {"simpy": "simulated loop, network, DNS (sim/world)", "asyncio": "asyncio",
             "aiosmtpd": "aiosmtpd", "aiosmtplib": "aiosmtplib", "email": "email (stdlib)",
             "dns": "dnspython", "matplotlib": "report (sim/report)",
             "numpy": "report (sim/report)", "pandas": "report (sim/report)",
             "PIL": "report (sim/report)", "pyarrow": "report (sim/report)"}
OTHER = "other libraries"


def layer_of(path: str, project: str) -> str | None:
    """The layer of code in ``path``, or None for code charged to its callers."""
    # Libraries first: a virtualenv may live inside the project.
    if path.startswith(project) and "site-packages/" not in path:
        rel = path[len(project):]
        for layer, part in _OURS:
            if rel.startswith(part):
                return layer
        return OTHER
    for base in ("site-packages/", _STDLIB):
        at = path.find(base)
        if at >= 0:
            top = path[at + len(base):].split("/", 1)[0]
            if top in _PACKAGES:
                return _PACKAGES[top]
            return OTHER if base == "site-packages/" else None
    return None       # built-ins ('~'), frozen importlib, <string>


def layer_seconds(stats: pstats.Stats, project: Path = ROOT) -> dict[str, float]:
    """Self seconds per layer, generic code charged to its callers."""
    prefix = str(project) + "/"
    raw = stats.stats  # type: ignore[attr-defined]
    memo: dict[Key, dict[str, float]] = {}

    def share(key: Key, active: frozenset[Key]) -> dict[str, float]:
        """Fractions per layer of time spent in ``key``, by who called it."""
        if key in memo:
            return memo[key]
        own = layer_of(key[0], prefix)
        if own is not None:
            memo[key] = {own: 1.0}
            return memo[key]
        callers = raw[key][4]
        # Weight by cumulative time per caller edge (tt would be 0 for a
        # generic caller whose time is all in its callees).
        weights = {c: v[3] for c, v in callers.items() if c not in active and c in raw}
        total = sum(weights.values())
        out: dict[str, float] = {}
        if total <= 0:
            out = {OTHER: 1.0}
        else:
            for c, w in sorted(weights.items()):
                for layer, f in share(c, active | {key}).items():
                    out[layer] = out.get(layer, 0.0) + f * w / total
        # Memoised even when a recursive edge was cut: recursion among
        # generic functions is rare and shallow, and the table is a share.
        memo[key] = out
        return out

    seconds: dict[str, float] = {}
    for key in sorted(raw):
        tt, callers = raw[key][2], raw[key][4]
        if layer_of(key[0], prefix) is not None or not callers:
            parts = {layer_of(key[0], prefix) or OTHER: tt}
        else:
            # Split this function's own time by caller edge (exact), then
            # each caller's part by that caller's layers.
            parts = {}
            edge_tt = {c: v[2] for c, v in callers.items() if c in raw}
            total = sum(edge_tt.values()) or 1.0
            for c, t in sorted(edge_tt.items()):
                for layer, f in share(c, frozenset({key})).items():
                    parts[layer] = parts.get(layer, 0.0) + f * tt * t / total
        for layer, t in parts.items():
            seconds[layer] = seconds.get(layer, 0.0) + t
    return seconds


def table(seconds: dict[str, float], gc_s: float | None = None) -> str:
    """The layers as Markdown rows, largest first, with their share."""
    total = sum(seconds.values()) or 1.0
    rows = ["| layer | self s | share |", "|---|---:|---:|"]
    for layer, s in sorted(seconds.items(), key=lambda kv: (-kv[1], kv[0])):
        rows.append(f"| {layer} | {s:.1f} | {100 * s / total:.1f}% |")
    rows.append(f"| total profiled | {total:.1f} | 100% |")
    if gc_s is not None:
        rows.append(f"\ncyclic collector (inside the rows above): {gc_s:.1f} s "
                    f"({100 * gc_s / total:.1f}%)")
    return "\n".join(rows)


@contextmanager
def collector_seconds() -> Iterator[list[float]]:
    """Measure the cyclic collector's wall seconds inside the block; the
    yielded one-element list holds the total once the block ends."""
    spent = [0.0]
    started = [0.0]

    def callback(phase: str, _info: dict) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            spent[0] += time.perf_counter() - started[0]

    gc.callbacks.append(callback)
    try:
        yield spent
    finally:
        gc.callbacks.remove(callback)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not Path(args[0]).is_file():
        print("usage: python benchmarks/layers.py PROFILE (a cProfile file)", file=sys.stderr)
        return 2
    stats = pstats.Stats(args[0])
    # The profile names files where it ran: find that checkout's root.
    paths = [k[0] for k in stats.stats if "/mta/" in k[0]]  # type: ignore[attr-defined]
    project = Path(paths[0].split("/mta/")[0]) if paths else ROOT
    print(table(layer_seconds(stats, project)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
