"""``mxsim explore SCENARIO --guarantee ID [--budget N] [--seed S] --out DIR``: find a failing world.

Searches the settings the scenario's explore: block declares for a world
in which the guarantee's check fails, shrinks it (each range towards its
'from', each list towards its first choice, then without the traffic
actors and expectations the failure does not need) and writes
DIR/minimal.yaml (a commented scenario: ``mxsim run DIR/minimal.yaml``
reproduces the failure) with its run's report in DIR.  The worlds run on
Dask, as sweeps do (a LocalCluster, or the cluster at --scheduler);
DIR/minimal.yaml is the same for a given --seed on any number of workers.  Exit status: 0 no failing world within the budget, 1 a
failing world was found and written, 2 bad input (checked before any run).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from sim.cli import UsageError
from sim.commands.paths import output_dir

MINIMAL = "minimal.yaml"


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("explore", help="search a scenario's explore: ranges for a world "
                                       "that breaks a guarantee",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("scenario", metavar="SCENARIO", help="scenario file with an explore: block")
    p.add_argument("--guarantee", metavar="ID", required=True,
                   help="the guarantee to break (one the scenario expects)")
    p.add_argument("--budget", metavar="N", type=int, default=200,
                   help="worlds to try before shrinking (default 200)")
    p.add_argument("--seed", metavar="S", type=int, default=0, help="the search's seed")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="an existing Dask scheduler (tcp://host:8786) instead of a local cluster")
    p.add_argument("--workers", metavar="N", type=int,
                   help="worker processes of the local cluster (default: one per core)")
    p.add_argument("--out", metavar="DIR", required=True, help="output folder")
    return p


def _checked(args: argparse.Namespace):
    """(scenario data, its axes) once everything is known to be valid."""
    from sim.pipeline import load
    from sim.scenario.loader import ScenarioError
    from sim.sweep.plan import scenario_yaml
    from sim.sweep.variants import SweepInputError, prepare

    output_dir(args.out, "--out")
    if args.budget < 1:
        raise UsageError(f"--budget {args.budget}: expected at least 1")
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers {args.workers}: expected at least 1")
    try:
        sc = load(args.scenario)
    except ScenarioError as exc:
        raise UsageError("\n".join(str(p) for p in exc.problems)) from None
    if not sc.explore:
        raise UsageError(f"{args.scenario}: no explore: block, so nothing to search "
                         f"(docs/scenarios.md, sim/scenario/explore.py)")
    if args.guarantee not in {e.guarantee for e in sc.expectations}:
        raise UsageError(f"--guarantee {args.guarantee}: {args.scenario} does not expect it "
                         f"(expects {', '.join(e.guarantee for e in sc.expectations)})")
    # Every value of every axis must fit the scenario on its own: the sweep's validation.
    specs = [f"{a.key}={','.join(_flow(v) for v in _ends(a.values()))}" for a in sc.explore]
    text = Path(args.scenario).read_text(encoding="utf-8")
    without = scenario_yaml({k: v for k, v in yaml.safe_load(text).items() if k != "explore"})
    for spec in specs:
        try:
            prepare(args.scenario, [spec], None, text=without)
        except SweepInputError as exc:
            raise UsageError("\n".join(p.replace("--vary", "explore:") for p in exc.problems)) \
                from None
    return yaml.safe_load(text), list(sc.explore)


def _ends(values: list) -> list:
    """The values checked up front: the ends of a range, every choice."""
    return values if len(values) <= 20 else [values[0], values[len(values) // 2], values[-1]]


def _flow(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def run(args: argparse.Namespace) -> int:
    from sim.explore.search import search
    from sim.explore.worlds import Outcome, Worlds
    from sim.pipeline import load_string, run_scenario
    from sim.sweep.plan import scenario_yaml
    from sim.sweep.run import ClusterError, connect

    data, axes = _checked(args)
    out = Path(args.out)
    tty = sys.stderr.isatty()
    failed = 0

    def shown(n: int, outcome: Outcome) -> None:
        nonlocal failed
        failed += outcome.fails
        if tty:
            sys.stderr.write(f"\rexplore: {n} worlds run, {failed} failing")
            sys.stderr.flush()

    try:
        client, cluster = connect(args.scheduler, args.workers)
    except ClusterError as exc:
        raise UsageError(str(exc)) from None
    try:
        worlds = Worlds(client, args.guarantee, args.scenario, on_world=shown)
        found = search(data, axes, worlds, args.budget, args.seed)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    if tty:
        sys.stderr.write("\n")
    if found is None:
        print(f"{args.guarantee}: no failing world in {worlds.worlds} worlds "
              f"({worlds.refused} combinations the scenario format refused)")
        return 0
    header = [f"# Minimal world found by: mxsim explore {args.scenario} "
              f"--guarantee {args.guarantee} --budget {args.budget} --seed {args.seed}",
              f"# ({found.worlds} worlds run).  {args.guarantee} fails here: {found.detail}",
              "# Settings chosen from the explore: block (shrunk as far as the failure allows;",
              "# key paths of the original file):"]
    header += [f"#   {k} = {_flow(v)}" for k, v in found.values.items()]
    header += [f"# Removed, not needed for the failure: {', '.join(found.removed)}"
               if found.removed else "# Nothing else could be removed."]
    header.append(f"# Reproduce: mxsim run {out / MINIMAL}")
    text = "\n".join(header) + "\n" + scenario_yaml(found.data)
    out.mkdir(parents=True, exist_ok=True)
    (out / MINIMAL).write_text(text, encoding="utf-8")
    result = run_scenario(load_string(text, str(out / MINIMAL)), out=out)
    print(f"{args.guarantee}: failing world found after {found.worlds} worlds; "
          f"{out / MINIMAL} ({len(text.splitlines())} lines) and its report in {out}/")
    for k, v in found.values.items():
        print(f"  {k} = {_flow(v)}")
    if not any(g.id == args.guarantee and g.status == "fail" for g in result.verdict.guarantees):
        print(f"warning: {out / MINIMAL} did not fail {args.guarantee} when run again",
              file=sys.stderr)
    return 1
