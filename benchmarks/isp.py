"""The 7-day ISP world, end to end: simulate, judge, report.

Prints one line::

    messages=N events=N sim_s=X judge_s=X report_s=X wall_s=X rss_mb=X sim_rss_mb=X sim_cpu_s=X

The stages are the pipeline's own (:mod:`sim.pipeline`), timed apart:

* ``sim_s``: the scenario loaded, the world built and run to its end, its
  ``events.jsonl`` written as the events are emitted (the streamed log is
  part of the run, not a pass after it);
* ``judge_s``: the evidence model and every check (the verdict);
* ``report_s``: what ``mxsim run`` writes after that, from the same model
  and verdict: the maillog, verdict.json, the figures, report.md and
  report.html.

``rss_mb`` is the peak resident memory of this process, ``sim_rss_mb`` that
peak by the end of the simulation; ``sim_cpu_s`` is the simulation's CPU
time (steadier than wall time on a shared machine).  Goals (DESIGN.md):
whole run under 180 s and 1.5 GB, judge plus report under 20% of it.

    python benchmarks/isp.py                       # worlds/isp-7d.yaml
    python benchmarks/isp.py --world /tmp/small.yaml --out /tmp/isp-out
    python benchmarks/isp.py --profile /tmp/isp.prof   # cProfile of the whole run
    python benchmarks/isp.py --layers              # and its self time by layer
    python benchmarks/isp.py --memory              # what the simulation holds at its end

``--layers`` profiles the run (CPU time) and prints the share of self time
per layer (:mod:`benchmarks.layers`), with the cyclic collector's time
measured apart.  ``--memory`` traces allocations (tracemalloc, several times
slower) and prints, at the end of the simulation, what is held per message
and per event and the lines that allocated most of it; the other figures of
that run are not comparable.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mta import events as E                                      # noqa: E402
from sim.evidence.model import Evidence                          # noqa: E402
from sim.evidence.verdict import build_verdict                   # noqa: E402
from sim.pipeline import load, planned_expectations, write_outputs   # noqa: E402
from sim.runner import run                                       # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
import layers                                                    # noqa: E402


def measure(world: Path, out: Path, memory: list[str] | None = None) -> str:
    """Run ``world`` into ``out``; the figures line.  With ``memory`` (a
    list), tracemalloc is on and its lines are appended there."""
    t0, c0 = time.perf_counter(), time.process_time()
    sc = load(world)
    out.mkdir(parents=True, exist_ok=True)
    done = run(sc, sc.seed, planned_expectations(sc), log=out / "events.jsonl")
    t1, c1 = time.perf_counter(), time.process_time()
    if memory is not None:
        memory.extend(held(tracemalloc.take_snapshot(), len(done.events),
                           sum(isinstance(e, E.MessageSubmitted) for e in done.events)))
        tracemalloc.stop()
    sim_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    evidence = Evidence(done.events)
    verdict = build_verdict(evidence)
    t2 = time.perf_counter()
    write_outputs(out, evidence, logged=True, verdict=verdict)
    t3 = time.perf_counter()
    messages = len(evidence.of(E.MessageSubmitted))
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return (f"messages={messages} events={len(done.events)} sim_s={t1 - t0:.1f} "
            f"judge_s={t2 - t1:.1f} report_s={t3 - t2:.1f} wall_s={t3 - t0:.1f} "
            f"rss_mb={rss_mb:.0f} sim_rss_mb={sim_rss_mb:.0f} sim_cpu_s={c1 - c0:.1f}")


def held(snapshot: tracemalloc.Snapshot, events: int, messages: int, top: int = 12) -> list[str]:
    """What the simulation holds at its end: in all, per message and per
    event, and the ``top`` allocating lines."""
    stats = snapshot.statistics("lineno")
    total = sum(s.size for s in stats)
    lines = [f"traced_mb={total / 2**20:.1f} per_message_b={total / max(messages, 1):.0f} "
             f"per_event_b={total / max(events, 1):.0f} (messages={messages} events={events})"]
    root = str(ROOT) + "/"
    for s in stats[:top]:
        frame = s.traceback[0]
        lines.append(f"  {s.size / 2**20:7.1f} MB {s.count:8d} x {s.size / max(s.count, 1):5.0f} B  "
                     f"{frame.filename.replace(root, '')}:{frame.lineno}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--world", type=Path, default=ROOT / "worlds" / "isp-7d.yaml")
    ap.add_argument("--out", type=Path, default=None, help="default: a temporary folder")
    ap.add_argument("--profile", type=Path, default=None, help="write a cProfile here")
    ap.add_argument("--layers", action="store_true",
                    help="profile the run and print its self time by layer")
    ap.add_argument("--memory", action="store_true",
                    help="trace allocations; print what the simulation holds at its end")
    args = ap.parse_args(argv)
    if not args.world.is_file():
        ap.error(f"no such world file: {args.world}")
    if args.memory and (args.profile or args.layers):
        ap.error("--memory cannot be combined with --profile or --layers")
    if args.profile and not args.profile.parent.is_dir():
        ap.error(f"no such folder for the profile: {args.profile.parent}")
    memory: list[str] | None = None
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        if args.profile or args.layers:
            # CPU time: on a shared machine, wall time would charge other
            # processes to whatever function was running.
            prof = cProfile.Profile(time.process_time)
            with layers.collector_seconds() as gc_s:
                line = prof.runcall(measure, args.world, out)
            if args.profile:
                prof.dump_stats(args.profile)
        elif args.memory:
            memory = []
            tracemalloc.start()
            line = measure(args.world, out, memory)
        else:
            line = measure(args.world, out)
    print(line)
    if memory:
        print("\n".join(memory))
    if args.layers:
        print(layers.table(layers.layer_seconds(pstats.Stats(prof)), gc_s[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
