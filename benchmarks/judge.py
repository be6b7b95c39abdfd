"""Cost per event of judging and reporting a run: the evidence model, every
check, the report.

Prints one line::

    events=N judge_s=X events_per_s=N report_s=X bytes_per_event=N

Times are CPU seconds of this process (the machine is shared: wall time
would measure the neighbours).  ``judge_s`` is building
:class:`~sim.evidence.model.Evidence` and the verdict (every check of the
log's expectations), ``events_per_s`` the events judged per second of it
(goal, DESIGN.md: at least 500,000), ``report_s`` the figures and the
Markdown and HTML texts from that same model and verdict (nothing is
written: the files cost the disk's time).

``bytes_per_event`` is the memory a judged run holds per event: the log
itself (the list, every event and every value reachable from it, each
object counted once) plus what building the model and the verdict leaves on
the heap (tracemalloc, measured after the timed pass so tracing never
touches the timings); the two shares go to stderr.  A log read from JSONL
shares no strings between events, so ``--events`` gives an upper bound of
the same run held by the simulation, which ``--world`` measures.

``--breakdown`` adds the CPU time of each shared projection and each
check (each measured on first use, as judging pays for it), in the order
judging meets them.

``--memory`` adds what judging and reporting allocate over the log they
start from (the end of a simulation): the tracemalloc peak while the model
and the verdict are built, what they still hold after, and the peak while
``write_outputs`` writes the maillog, verdict and report files (into a
temporary folder), each per event of the log::

    memory: judge_peak_b=N judge_held_b=N report_peak_b=N (per event, over the log)

    python benchmarks/judge.py --events reports/isp-7d/events.jsonl
    python benchmarks/judge.py --world /tmp/isp100.yaml       # simulate first
    python benchmarks/judge.py --events E.jsonl --profile /tmp/judge.prof  # + top lines
    python benchmarks/judge.py --events E.jsonl --breakdown --memory
"""
from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mta import events as E                                      # noqa: E402
from sim.evidence.log import LogError, read_jsonl                # noqa: E402
from sim.evidence.model import Evidence                          # noqa: E402
from sim.evidence.verdict import build_verdict                   # noqa: E402
from sim.report.write import build_report                        # noqa: E402


def simulate(world: Path) -> list[E.Event]:
    """The log of one run of ``world`` (no files written)."""
    from sim.pipeline import load, planned_expectations
    from sim.runner import run
    sc = load(world)
    return run(sc, sc.seed, planned_expectations(sc)).events


def timed(events: list[E.Event], profile: Path | None) -> tuple[float, float]:
    """(judge_s, report_s) of one judged and rendered log."""
    prof = cProfile.Profile() if profile else None
    t0 = time.process_time()
    if prof:
        prof.enable()
    evidence = Evidence(events)
    verdict = build_verdict(evidence)
    t1 = time.process_time()
    # The report reuses the model (and its cached projections) the checks
    # built, and their verdict: what the pipeline does.
    build_report(evidence, verdict)
    if prof:
        prof.disable()
    t2 = time.process_time()
    if prof:
        prof.dump_stats(profile)
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    return t1 - t0, t2 - t1


def retained(events: list[E.Event]) -> int:
    """Bytes the log itself holds: the list, every event and every value
    reachable from them, each object counted once (strings the simulation
    shares between events count once, as they are held once)."""
    seen: set[int] = set()
    total = sys.getsizeof(events)
    stack: list[object] = list(events)
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, E.Event):
            stack.extend(getattr(obj, f) for f in obj.__dataclass_fields__)
        elif isinstance(obj, (tuple, list)):
            stack.extend(obj)
        elif isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
    return total


def model_bytes(events: list[E.Event]) -> int:
    """Heap bytes the evidence model and the verdict add to the log
    (tracemalloc while they are built, what is still held after)."""
    gc.collect()
    tracemalloc.start()
    evidence = Evidence(events)
    build_verdict(evidence)
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del evidence
    return held


def breakdown(events: list[E.Event]) -> list[tuple[str, float]]:
    """(what, CPU s) of each shared projection and each check, on a fresh
    model, in the order judging first needs them."""
    from sim.evidence.checks import run_check
    from sim.evidence.model import collector_paused
    out: list[tuple[str, float]] = []

    def timed_step(name: str, fn) -> None:
        t = time.process_time()
        fn()
        out.append((name, time.process_time() - t))

    with collector_paused():
        holder: list[Evidence] = []
        timed_step("evidence model (the pass over the log)", lambda: holder.append(Evidence(events)))
        evidence = holder[0]
        for name in ("lifecycles", "outcomes", "counts"):
            timed_step(name, lambda: getattr(evidence, name))
        for exp in evidence.expectations:
            timed_step(f"check {exp.guarantee}",
                       lambda: run_check(exp.guarantee, evidence, exp.params))
    return out


def memory(events: list[E.Event]) -> tuple[int, int, int]:
    """(judge peak, judge held, report peak): tracemalloc bytes over the
    log, while judging, after it, and while ``write_outputs`` runs."""
    from sim.pipeline import write_outputs
    import sim.report.write  # noqa: F401 - the report's imports are not its allocations
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    evidence = Evidence(events)
    verdict = build_verdict(evidence)
    held, judge_peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    with tempfile.TemporaryDirectory() as tmp:
        write_outputs(Path(tmp), evidence, logged=True, verdict=verdict)
    report_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return judge_peak - base, held - base, report_peak - base


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--events", type=Path, help="a saved events.jsonl")
    src.add_argument("--world", type=Path, help="a scenario (world) file to run first")
    ap.add_argument("--profile", type=Path, default=None,
                    help="write a cProfile of judging and reporting here, print its top lines")
    ap.add_argument("--breakdown", action="store_true",
                    help="also print the CPU time of each projection and each check")
    ap.add_argument("--memory", action="store_true",
                    help="also print the tracemalloc peaks of judging and of reporting "
                         "per event")
    args = ap.parse_args(argv)
    path = args.events or args.world
    if not path.is_file():
        ap.error(f"no such file: {path}")
    if args.world:
        events = simulate(args.world)
    else:
        try:
            events = read_jsonl(path)
        except LogError as exc:
            ap.error(str(exc))
    n = len(events)
    judge_s, report_s = timed(events, args.profile)
    log_b, model_b = retained(events), model_bytes(events)
    print(f"events={n} judge_s={judge_s:.2f} events_per_s={n / judge_s:.0f} "
          f"report_s={report_s:.2f} bytes_per_event={round((log_b + model_b) / max(1, n))}")
    print(f"  (log {log_b / max(1, n):.0f} B/event, evidence model {model_b / max(1, n):.0f} "
          f"B/event)", file=sys.stderr)
    if args.breakdown:
        for name, cpu in breakdown(events):
            print(f"  {name:45s} {cpu * 1000:8.1f} ms")
    if args.memory:
        judge_peak, judge_held, report_peak = memory(events)
        per = max(1, n)
        print(f"memory: judge_peak_b={judge_peak / per:.0f} judge_held_b={judge_held / per:.0f} "
              f"report_peak_b={report_peak / per:.0f} (per event, over the log; "
              f"report peak {report_peak / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
