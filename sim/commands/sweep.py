"""``mxsim sweep SCENARIO --vary KEY=VALUES ... --seeds A-B --out DIR``: many worlds on Dask.

Runs the product of the varied settings and the seeds on Dask distributed
(a LocalCluster of one worker process per core, started with
sim.sweep.run.LOCAL_CONFIG: no worker profiler, slower monitors; or the
cluster at --scheduler, used with its own settings), and writes DIR/dataset/ (Parquet, one part file per finished
run, a row per run and guarantee), DIR/sweep.json (the plan) and
DIR/index.html (loss and bounce fractions against each setting).  Runs
already in DIR are skipped, so rerunning an interrupted sweep, or
``mxsim sweep --resume DIR``, finishes it.  Exit status: 0 every run
judged, 1 some run could not run, 2 bad input (checked before any run).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from sim.cli import UsageError
from sim.commands.paths import output_dir


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("sweep", help="run a scenario over varied settings and seeds on Dask",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("scenario", metavar="SCENARIO", nargs="?", help="scenario file (YAML)")
    p.add_argument("--vary", metavar="KEY=VALUES", action="append", default=[],
                   help="a key path and its values: roles[0].retry.lifetime=1d,2d,3d or "
                        "hosts[0].link.schedule.outages[0].for=12h..72h/12h (repeatable)")
    p.add_argument("--seeds", metavar="A-B", help="seeds to run each setting with "
                   "(A-B, N, or a comma list; default the scenario's seed)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="an existing Dask scheduler (tcp://host:8786) instead of a local cluster "
                        "(its Dask settings are left as they are)")
    p.add_argument("--workers", metavar="N", type=int,
                   help="worker processes of the local cluster (default: one per core)")
    p.add_argument("--keep-runs", action="store_true",
                   help="keep each run's full output in DIR/runs/<run id>/")
    p.add_argument("--out", metavar="DIR", help="the sweep's folder")
    p.add_argument("--resume", metavar="DIR",
                   help="finish the sweep recorded in DIR (no SCENARIO or --vary needed)")
    return p


class Progress:
    """A bar on a terminal, else one plain line per finished run (stderr)."""

    def __init__(self, stream: TextIO, tty: bool) -> None:
        self.stream = stream
        self.tty = tty
        self.width = 0

    def __call__(self, point, rows: list[dict], done: int, total: int) -> None:
        judged = [r for r in rows if r["guarantee"] is not None]
        what = rows[0]["error"] and "could not run" or \
            f"{sum(bool(r['met']) for r in judged)}/{len(judged)} met"
        if self.tty:
            filled = int(30 * done / total) if total else 30
            text = f"sweep [{'#' * filled}{'.' * (30 - filled)}] {done}/{total} runs"
            self.width = max(self.width, len(text))
            self.stream.write("\r" + text.ljust(self.width))
            if done == total:
                self.stream.write("\n")
        else:
            self.stream.write(f"sweep: {done}/{total} run {point.run_id} seed {point.seed}: "
                              f"{what}\n")
        self.stream.flush()


def _inputs(args: argparse.Namespace) -> tuple[str, list[str], str | None, str | None, Path]:
    """(scenario file, vary specs, seeds, base text or None, out folder)."""
    from sim.sweep import dataset

    if args.resume is not None:
        if args.scenario or args.vary or args.seeds or args.out:
            raise UsageError("--resume DIR takes the plan from DIR/sweep.json: give no "
                             "SCENARIO, --vary, --seeds or --out with it")
        out = output_dir(args.resume, "--resume")
        manifest = dataset.read_manifest(out)
        if manifest is None:
            raise UsageError(f"--resume {out}: no {dataset.MANIFEST} there (not a sweep folder)")
        return (manifest["scenario_file"], manifest["vary"], manifest["seeds"],
                manifest["scenario_text"], out)
    if args.scenario is None or args.out is None:
        raise UsageError("sweep needs SCENARIO and --out DIR (or --resume DIR)")
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers {args.workers}: expected at least 1")
    return args.scenario, args.vary, args.seeds, None, output_dir(args.out, "--out")


def run(args: argparse.Namespace) -> int:
    from sim.sweep import dataset
    from sim.sweep.report import write_sweep_report
    from sim.sweep.run import ClusterError, SweepOutcome, connect, pending, run_sweep
    from sim.sweep.variants import SweepInputError, prepare

    scenario, specs, seeds, text, out = _inputs(args)
    try:
        sweep = prepare(scenario, specs, seeds, text)
    except SweepInputError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        return 2
    old = dataset.read_manifest(out)
    if old is not None and (old["scenario_sha256"] != sweep.digest
                            or old["keys"] != [v.key for v in sweep.varies]):
        raise UsageError(f"--out {out}: it holds a sweep of another scenario or other keys "
                         f"({', '.join(old['keys']) or 'none'}); choose another folder")
    total = len(sweep.points())
    if pending(sweep, out):
        try:
            client, cluster = connect(args.scheduler, args.workers)
        except ClusterError as exc:
            raise UsageError(str(exc)) from None
        dataset.write_manifest(out, sweep.manifest())
        try:
            outcome = run_sweep(sweep, out, client=client, keep_runs=args.keep_runs,
                                on_done=Progress(sys.stderr, sys.stderr.isatty()))
        except KeyboardInterrupt:
            print(f"\ninterrupted: {len(dataset.done_runs(out))} of {total} runs are in "
                  f"{out / dataset.DATASET}/; mxsim sweep --resume {out} finishes the sweep",
                  file=sys.stderr)
            return 130
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    else:
        dataset.write_manifest(out, sweep.manifest())
        outcome = SweepOutcome(total, total, 0, 0)
    page = write_sweep_report(out, sweep.manifest(), sweep.varies)
    print(f"{sweep.name}: {outcome.planned} run{'s' * (outcome.planned != 1)} "
          f"({outcome.ran} run now, {outcome.skipped} "
          f"already done, {outcome.errors} could not run); dataset in {out / dataset.DATASET}/, "
          f"report {page}")
    return 1 if outcome.errors else 0
