"""Start-up of the command line: ``mxsim --help`` and ``mxsim validate``.

Runs each command ``--runs`` times in fresh processes and prints one line
per command and interpreter::

    python=PATH command='validate scenarios/mx-fallback.yaml' runs=20 cpu_min=X cpu_median=X wall_min=X wall_median=X

``cpu`` is the child's user+sys time (``os.wait4``), ``wall`` its elapsed
time, both in seconds (issue 16's goal: under 0.3 s).  The machine is
shared: compare interpreters side by side with ``--against``, whose runs
are interleaved with this one's (A, B, A, B...) so that both see the same
neighbours.  Each interpreter runs in the checkout its ``sim`` package
comes from (``--against-root``), on the scenario files of that checkout.

    .venv/bin/python benchmarks/startup.py                       # --help and mx-fallback
    .venv/bin/python benchmarks/startup.py --against /work/main/.venv/bin/python \\
        --against-root /work/main -- validate scenarios/auth-relay-limits.yaml
"""
from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_COMMANDS = ["--help", "validate scenarios/mx-fallback.yaml"]


def one_run(python: str, root: Path, argv: list[str]) -> tuple[float, float]:
    """(CPU s, wall s) of ``python -m sim.cli ARGV`` run in ``root``."""
    started = time.perf_counter()
    proc = subprocess.Popen([python, "-m", "sim.cli", *argv], cwd=root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{python} -m sim.cli {shlex.join(argv)} exited {proc.returncode}")
    return usage.ru_utime + usage.ru_stime, wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("commands", nargs="*", metavar="COMMAND",
                        help="mxsim arguments, one quoted string per command "
                             f"(default: {DEFAULT_COMMANDS})")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--against", metavar="PYTHON", help="a second interpreter, interleaved")
    parser.add_argument("--against-root", type=Path, metavar="DIR",
                        help="the checkout --against runs in (its scenario files)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.against and not args.against_root:
        parser.error("--against needs --against-root")
    sides = [(sys.executable, ROOT)]
    if args.against:
        if not args.against_root.is_dir():
            parser.error(f"--against-root: no such folder: {args.against_root}")
        sides.append((args.against, args.against_root))
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", file=sys.stderr)
    for command in args.commands or DEFAULT_COMMANDS:
        argv = shlex.split(command)
        for python, root in sides:           # warm the file cache, untimed
            one_run(python, root, argv)
        samples: dict[str, list[tuple[float, float]]] = {python: [] for python, _ in sides}
        for _ in range(args.runs):
            for python, root in sides:
                samples[python].append(one_run(python, root, argv))
        for python, _ in sides:
            cpu = [c for c, _ in samples[python]]
            wall = [w for _, w in samples[python]]
            print(f"python={python} command={command!r} runs={args.runs} "
                  f"cpu_min={min(cpu):.3f} cpu_median={statistics.median(cpu):.3f} "
                  f"wall_min={min(wall):.3f} wall_median={statistics.median(wall):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
