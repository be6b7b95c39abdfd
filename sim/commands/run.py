"""``mxsim run SCENARIO [--seed N] [--out DIR]``: run one scenario.

Writes events.jsonl, verdict.json, report.md and report.html into DIR
(default ``reports/<scenario name>/``) and prints a short summary.  Exit
status: 0 every expectation met, 1 some expectation not met, 2 the scenario
or the command line is invalid (each problem named with file, key path and
what was expected).  A progress line (simulated time reached, messages in
flight) is shown only when standard output is a terminal.
"""
from __future__ import annotations

import argparse
import textwrap
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from mta.units import format_duration
from sim.commands.report import print_out
from sim.commands.paths import output_dir
from sim.pipeline import RunResult, load, run_scenario
from sim.runner import RunnerError
from sim.scenario.loader import ScenarioError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("run", help="run one scenario and write its report",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("scenario", metavar="SCENARIO", help="scenario file (YAML)")
    p.add_argument("--seed", type=int, help="seed instead of the file's")
    p.add_argument("--out", metavar="DIR", help="output folder (default reports/<name>/)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show a progress line (default: only on a terminal)")
    return p


class ProgressLine:
    """One self-overwriting line: simulated time reached, messages in flight.

    Shown only once the run has taken ``after`` seconds of wall time, so a
    quick run prints nothing but its summary.  (Wall time is read for this
    display only; it never reaches the event log.)
    """

    def __init__(self, name: str, stream: TextIO, after: float = 0.5) -> None:
        self.name = name
        self.stream = stream
        self.width = 0
        self.after = after
        self.started = time.perf_counter()

    def __call__(self, now: float, duration: float, in_flight: int) -> None:
        if time.perf_counter() - self.started < self.after:
            return
        done = int(30 * now / duration) if duration else 30
        text = (f"{self.name} [{'#' * done}{'.' * (30 - done)}] "
                f"{format_duration(now)}/{format_duration(duration)}  in flight {in_flight}")
        self.width = max(self.width, len(text))
        self.stream.write("\r" + text.ljust(self.width))
        self.stream.flush()

    def clear(self) -> None:
        if self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()


def summary(result: RunResult) -> str:
    """The short summary table printed after a run."""
    sc, v = result.scenario, result.verdict
    lines = [f"{sc.name} (seed {result.seed}): {format_duration(result.sim_time)} simulated "
             f"in {result.wall_time:.2f} s, {len(result.events)} events",
             "recipients: " + ", ".join(f"{k} {n}" for k, n in v.counts.items())]
    rows = [("guarantee", "expected", "result", "met", "evidence", "detail")]
    for g in v.guarantees:
        rows.append((g.id, g.expected, g.result, "yes" if g.met else "NO", str(g.judged or "-"),
                     _short(g.detail)))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[5])
    if not v.guarantees:
        lines.append("  (no expectations)")
    lines.append(f"expectations met: {v.met_count}/{len(v.guarantees)}")
    return "\n".join(lines)


def _short(text: str, limit: int = 90) -> str:
    """One line of at most ``limit`` characters, cut between words."""
    return textwrap.shorten(text, limit, placeholder=" ...")


def report_location(result: RunResult) -> str:
    return f"report written to {result.out}/report.md (and report.html, verdict.json, events.jsonl)"


def run_file(path: str, *, seed: int | None = None, out: str | None = None,
             out_root: str | None = None, progress: Any = None,
             stderr: TextIO | None = None) -> RunResult | None:
    """Load and run one file; print its problems and return None if invalid.

    The report goes to ``out``, else ``out_root/<name>``, else
    ``reports/<name>``."""
    stderr = stderr or sys.stderr
    try:
        sc = load(path)
    except ScenarioError as exc:
        for problem in exc.problems:
            print(problem, file=stderr)
        return None
    if out is None and out_root is not None:
        out = str(Path(out_root) / sc.name)
    try:
        return run_scenario(sc, seed=seed, out=out, progress=progress)
    except RunnerError as exc:
        print(f"{path}: cannot run: {exc}", file=stderr)
        return None


def run(args: argparse.Namespace) -> int:
    if args.out is not None:
        output_dir(args.out, "--out")
    show = sys.stdout.isatty() if args.progress is None else args.progress
    # --progress shows it from the start; on a terminal, only for runs longer than a moment.
    line = ProgressLine(args.scenario, sys.stdout, after=0.0 if args.progress else 0.5) \
        if show else None
    try:
        result = run_file(args.scenario, seed=args.seed, out=args.out, progress=line)
    finally:
        if line is not None:
            line.clear()
    if result is None:
        return 2
    print_out(summary(result) + "\n" + report_location(result))
    return 0 if result.met else 1
