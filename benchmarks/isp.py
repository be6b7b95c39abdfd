"""The 7-day ISP world, end to end: simulate, judge, report.

Prints one line::

    messages=N events=N sim_s=X judge_s=X report_s=X wall_s=X rss_mb=X

The stages are the pipeline's own (:mod:`sim.pipeline`), timed apart:

* ``sim_s``: the scenario loaded, the world built and run to its end, its
  ``events.jsonl`` written as the events are emitted (the streamed log is
  part of the run, not a pass after it);
* ``judge_s``: the evidence model and every check (the verdict);
* ``report_s``: what ``mxsim run`` writes after that, from the same model
  and verdict: the maillog, verdict.json, the figures, report.md and
  report.html.

``rss_mb`` is the peak resident memory of this process.  Goals (DESIGN.md):
whole run under 180 s and 1.5 GB, judge plus report under 20% of it.

    python benchmarks/isp.py                       # worlds/isp-7d.yaml
    python benchmarks/isp.py --world /tmp/small.yaml --out /tmp/isp-out
    python benchmarks/isp.py --profile /tmp/isp.prof   # cProfile of the whole run
"""
from __future__ import annotations

import argparse
import cProfile
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mta import events as E                                      # noqa: E402
from sim.evidence.model import Evidence                          # noqa: E402
from sim.evidence.verdict import build_verdict                   # noqa: E402
from sim.pipeline import load, planned_expectations, write_outputs   # noqa: E402
from sim.runner import run                                       # noqa: E402


def measure(world: Path, out: Path) -> str:
    t0 = time.perf_counter()
    sc = load(world)
    out.mkdir(parents=True, exist_ok=True)
    done = run(sc, sc.seed, planned_expectations(sc), log=out / "events.jsonl")
    t1 = time.perf_counter()
    evidence = Evidence(done.events)
    verdict = build_verdict(evidence)
    t2 = time.perf_counter()
    write_outputs(out, evidence, logged=True, verdict=verdict)
    t3 = time.perf_counter()
    messages = len(evidence.of(E.MessageSubmitted))
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return (f"messages={messages} events={len(done.events)} sim_s={t1 - t0:.1f} "
            f"judge_s={t2 - t1:.1f} report_s={t3 - t2:.1f} wall_s={t3 - t0:.1f} "
            f"rss_mb={rss_mb:.0f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--world", type=Path, default=ROOT / "worlds" / "isp-7d.yaml")
    ap.add_argument("--out", type=Path, default=None, help="default: a temporary folder")
    ap.add_argument("--profile", type=Path, default=None, help="write a cProfile here")
    args = ap.parse_args(argv)
    if not args.world.is_file():
        ap.error(f"no such world file: {args.world}")
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        if args.profile:
            prof = cProfile.Profile()
            line = prof.runcall(measure, args.world, out)
            prof.dump_stats(args.profile)
        else:
            line = measure(args.world, out)
    print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
