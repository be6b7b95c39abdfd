"""``mxsim validate FILE...``: check scenario files without running them.

Prints every problem as ``file:line:column: key.path: what was expected``
and exits 2 if any file is invalid, 0 otherwise.  A scenario that neither
expects nor waives a cross-cutting guarantee gets a warning (exit still 0).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sim.pipeline import load
from sim.scenario.loader import Problem, ScenarioError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("validate", help="check scenario files (exit 2 if any is invalid)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="scenario files, or folders of *.yaml scenarios")
    p.add_argument("-q", "--quiet", action="store_true", help="print problems only")
    return p


def scenario_files(paths: list[str]) -> list[Path]:
    """Files named on the command line; a folder means its ``*.yaml`` files."""
    out: list[Path] = []
    for name in paths:
        p = Path(name)
        if p.is_dir():
            out += sorted(list(p.glob("*.yaml")) + list(p.glob("*.yml")))
        else:
            out.append(p)
    return out


def run(args: argparse.Namespace) -> int:
    bad = 0
    for path in scenario_files(args.files):
        warnings: list[Problem] = []
        try:
            sc = load(path, warnings=warnings)
        except ScenarioError as exc:
            bad += 1
            for problem in exc.problems:
                print(problem, file=sys.stderr)
            continue
        for w in warnings:
            where = f"{w.file}:{w.line}" if w.line is not None else w.file
            print(f"{where}: warning: {w.path}: {w.message}" if w.path
                  else f"{where}: warning: {w.message}", file=sys.stderr)
        for missing in sc.missing_cross_cutting():
            print(f"{path}: warning: '{missing}' is neither in expectations nor in waive",
                  file=sys.stderr)
        if not args.quiet:
            print(f"{path}: ok ({sc.name}: {len(sc.hosts)} hosts, {len(sc.roles)} roles, "
                  f"{len(sc.traffic)} actors, {len(sc.expectations)} expectations)")
    return 2 if bad else 0
