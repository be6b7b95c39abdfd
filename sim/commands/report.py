"""``mxsim report DIR``: rebuild a run's report from its events.jsonl alone.

Writes verdict.json, report.md and report.html into DIR (or ``--out``).
Exit status 0 when every expectation is met, 1 when one is not, 2 when the
log cannot be read (the message names the file and line).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sim.cli import UsageError
from sim.evidence.log import LogError, read_jsonl


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("report", help="rebuild a run's report from its event log",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("dir", metavar="DIR", help="run directory holding events.jsonl "
                                               "(or the path of an events.jsonl)")
    p.add_argument("--out", metavar="OUTDIR", help="write the report here (default: DIR)")
    return p


def log_path(arg: str) -> Path:
    """The event log a DIR argument names: ``DIR/events.jsonl``, or the file itself."""
    path = Path(arg)
    if path.is_dir():
        path = path / "events.jsonl"
    if not path.is_file():
        raise UsageError(f"{path}: no such event log (expected DIR/events.jsonl)")
    return path


def print_out(text: str) -> None:
    """Print ``text``; a reader that stopped early (``mxsim ... | head``) is not an error."""
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def run(args: argparse.Namespace) -> int:
    path = log_path(args.dir)
    try:
        events = read_jsonl(path)
    except LogError as exc:
        raise UsageError(str(exc)) from None
    out = Path(args.out) if args.out else path.parent
    from sim.report.write import write_report   # the plots: only when writing
    rep = write_report(events, out)
    v = rep.verdict
    lines = [f"{v.scenario or '(unnamed run)'} seed {v.seed}: "
             f"{v.met_count}/{len(v.guarantees)} expectations met"]
    for g in v.guarantees:
        mark = "ok  " if g.met else "FAIL"
        lines.append(f"  {mark} {g.id} (expected {g.expected}, {g.status}): {g.detail}")
    lines.append("  recipients: " + ", ".join(f"{k} {n}" for k, n in v.counts.items()))
    lines.append(f"report written to {out / 'report.html'}")
    print_out("\n".join(lines))
    return 0 if v.ok else 1
