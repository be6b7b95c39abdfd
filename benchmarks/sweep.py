"""Benchmark: a sweep's per-run overhead, and its speed-up on 2 Dask workers against 1.

    .venv/bin/python benchmarks/sweep.py overhead [--scenario S] [--vary K=V] [--runs 100]
                                                  [--compare-defaults]
    .venv/bin/python benchmarks/sweep.py speedup [--scenario scenarios/mx-fallback.yaml] [--runs 16]
    .venv/bin/python benchmarks/sweep.py profile [--runs 100] [--out /tmp/sweep.prof]

``overhead`` (issue 16, goal: the sweep takes at most 0.6x the sequential
time): the same short runs (``--runs``, default 100: the scenario's rate
varied, seeds for the rest), first one after another in this process
(:func:`sim.sweep.run.run_point` per run, as a loop in a notebook would,
after one untimed warm-up run), then split over two plain processes
running at once without Dask (what two worlds at a time cost on this
machine: the floor of the ratio), then as ``mxsim sweep`` does them on a
2-worker LocalCluster, Parquet parts included.  The cluster's start-up
(workers started, mxsim imported in each) is reported apart; its CPU is
split per run into the worlds (the workers' task threads, and the cyclic
collector's share of them), the workers' other threads (event loop,
heartbeats, monitors, profiler) and this process (scheduler, nannies,
client; results and part files on its main thread), with the time the
workers idled at the end (Dask's task stream).  ``--compare-defaults``
runs the sweep again on a cluster with Dask's own settings and no
collector freeze, as a ``--scheduler`` cluster is.  ``speedup`` (issue 14,
goal 1.7x): the same sweep on 1 worker, then on 2.  ``profile``: cProfile
of this process during a 2-worker sweep, the client-side cost per run.
The machine is shared: the CPU figures hold under load, the wall ratio
only on a quiet machine; the load average is printed first.
"""
from __future__ import annotations

import argparse
import cProfile
import gc
import logging
import multiprocessing
import os
import pstats
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sim.sweep.run import connect, run_point, run_sweep, warm  # noqa: E402
from sim.sweep.variants import Sweep, prepare  # noqa: E402


def _cpu() -> float:
    import psutil      # comes with distributed
    t = psutil.Process().cpu_times()
    return t.user + t.system


def _threads() -> dict[str, float]:
    """CPU seconds of each thread of this process, by name ("tid N" if unnamed)."""
    import psutil
    names = {t.native_id: t.name for t in threading.enumerate()}
    return {names.get(t.id, f"tid {t.id}"): t.user_time + t.system_time
            for t in psutil.Process().threads()}


class _Collector:
    """CPU seconds the cyclic collector took in this process since installed
    (a ``gc.callbacks`` entry, found again by :func:`_collector`)."""

    def __init__(self) -> None:
        self.total = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.thread_time()
        else:
            self.total += time.thread_time() - self._started


def _collector() -> float:
    """The collector's CPU seconds so far, installing the meter the first time."""
    for cb in gc.callbacks:
        if type(cb).__name__ == "_Collector":
            return cb.total
    gc.callbacks.append(_Collector())
    return 0.0


def _worker_meters() -> dict[str, float]:
    """A worker's task threads, its other threads and its collector, CPU s."""
    threads = _threads()
    tasks = sum(v for k, v in threads.items() if "Dask-Default-Threads" in k)
    return {"tasks": tasks, "loop": sum(threads.values()) - tasks, "gc": _collector()}


def planned(scenario: str, vary: list[str], runs: int) -> Sweep:
    """The sweep over ``vary`` with enough seeds for ``runs`` runs in all."""
    settings = len(prepare(scenario, vary, "1").points())
    return prepare(scenario, vary, f"1-{max(1, runs // settings)}")


def _args(sweep: Sweep, p) -> tuple:
    return sweep.scenario_text(p), sweep.label(p.values), sweep.name, sweep.varies, p, None


def sequential(sweep: Sweep) -> tuple[float, float, float]:
    """Every run of ``sweep`` one after another here; (wall s, CPU s, collector s)."""
    points = sweep.points()
    run_point(*_args(sweep, points[0]))   # imports and first-use caches, as the workers' warm-up
    started, cpu, collected = time.perf_counter(), _cpu(), _collector()
    for p in points:
        run_point(*_args(sweep, p))
    return time.perf_counter() - started, _cpu() - cpu, _collector() - collected


def _half(runs: list[tuple]) -> float:
    """CPU seconds of ``runs`` in a fresh process (after one warm-up run)."""
    run_point(*runs[0])
    started = time.thread_time()
    for args in runs:
        run_point(*args)
    return time.thread_time() - started


def two_plain_processes(sweep: Sweep) -> float:
    """CPU seconds of all the runs split over two processes running at once,
    without Dask: what two worlds at a time cost on this machine's two cores."""
    runs = [_args(sweep, p) for p in sweep.points()]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        return sum(pool.map(_half, [runs[0::2], runs[1::2]]))


@dataclass
class Swept:
    """A sweep on a fresh cluster: seconds of wall time and of CPU."""

    startup: float
    wall: float
    runs: int
    tasks: float           # the workers' task threads: the worlds
    collector: float       # of which the cyclic collector
    loops: float           # the workers' other threads: event loop, heartbeats, monitors
    client: float          # this process: client, scheduler, nannies, part files
    results: float         # of which this main thread: results, part files
    idle: float            # the workers idle, summed, from one's last task to the sweep's end

    @property
    def cpu(self) -> float:
        return self.tasks + self.loops + self.client


def _dask_defaults(workers: int):
    """A LocalCluster as ``connect`` makes it but with Dask's own settings and
    no freeze, as a ``--scheduler`` cluster would be (``--dask-defaults``)."""
    from dask.distributed import Client, LocalCluster
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, scheduler_kwargs={"dashboard_address": ":0"},
                           silence_logs=logging.ERROR)
    client = Client(cluster)
    client.run(warm)
    return client, cluster


def on_cluster(sweep: Sweep, workers: int, profile: str | None = None,
               dask_defaults: bool = False) -> Swept:
    """``sweep`` on a fresh LocalCluster, as ``mxsim sweep`` runs it."""
    from dask.distributed import get_task_stream

    started = time.perf_counter()
    client, cluster = _dask_defaults(workers) if dask_defaults else connect(None, workers)
    before = client.run(_worker_meters)
    ready = time.perf_counter()
    profiler = cProfile.Profile() if profile else None
    mine, main_thread = _cpu(), time.thread_time()
    with tempfile.TemporaryDirectory() as tmp, get_task_stream(client) as stream:
        if profiler:
            profiler.enable()
        outcome = run_sweep(sweep, Path(tmp), client=client)
        if profiler:
            profiler.disable()
    done = time.perf_counter()
    mine, main_thread = _cpu() - mine, time.thread_time() - main_thread
    after = client.run(_worker_meters)
    client.close()
    cluster.close()
    spent = {k: sum(after[w][k] - before[w][k] for w in after) for k in ("tasks", "loop", "gc")}
    last = {}
    for task in stream.data:
        stop = max(s["stop"] for s in task["startstops"])
        last[task["worker"]] = max(last.get(task["worker"], 0.0), stop)
    idle = sum(max(last.values()) - t for t in last.values())
    if profiler:
        profiler.dump_stats(profile)
        pstats.Stats(profile).sort_stats("tottime").print_stats(20)
    return Swept(ready - started, done - ready, outcome.ran, spent["tasks"], spent["gc"],
                 spent["loop"], mine, main_thread, idle)


def _lines(workers: int, s: Swept) -> str:
    # Everything here runs on the same cores: the workers' event loops and this
    # process (scheduler, nannies, client, part files) take CPU from the worlds.
    ms = lambda x: f"{1000 * x / s.runs:.1f} ms"  # noqa: E731
    return (f"{workers} worker{'s' if workers > 1 else ''}: {s.runs} runs in {s.wall:.2f} s "
            f"({s.runs / s.wall:.1f} runs/s), cluster start-up {s.startup:.1f} s apart; "
            f"{s.cpu / s.wall:.2f} cores' worth of CPU\n"
            f"  CPU a run: worlds {ms(s.tasks)} (collector {ms(s.collector)}), workers' event "
            f"loops {ms(s.loops)}, this process {ms(s.client)} (results and part files "
            f"{ms(s.results)}, scheduler, nannies and client {ms(s.client - s.results)})\n"
            f"  at the end the workers idled {s.idle:.2f} s in all while the last tasks ran")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=("overhead", "speedup", "profile"), nargs="?",
                    default="overhead")
    ap.add_argument("--scenario", help="default: scenarios/blocked-attachments.yaml "
                    "(overhead, profile), scenarios/mx-fallback.yaml (speedup)")
    ap.add_argument("--vary", action="append", default=None,
                    help="default: the first sender's rate, or (speedup) the outage length")
    ap.add_argument("--runs", type=int, help="runs in the sweep (default 100; speedup 16)")
    ap.add_argument("--out", default="/tmp/mxsim-sweep.prof", help="profile output (profile)")
    ap.add_argument("--compare-defaults", action="store_true",
                    help="overhead: also run the sweep on a cluster with Dask's default "
                         "settings and no collector freeze (as a --scheduler cluster is)")
    args = ap.parse_args()
    if args.what == "speedup":
        scenario = args.scenario or "scenarios/mx-fallback.yaml"
        vary = args.vary or ["hosts[0].link.schedule.outages[0].for=6h,1d"]
        runs = args.runs or 16
    else:
        scenario = args.scenario or "scenarios/blocked-attachments.yaml"
        vary = args.vary or ["traffic[0].rate=1/h,2/h"]
        runs = args.runs or 100
    sweep = planned(scenario, vary, runs)
    print(f"{scenario}, {len(sweep.points())} runs; load average before: "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    if args.what == "overhead":
        alone, alone_cpu, alone_gc = sequential(sweep)
        n = len(sweep.points())
        print(f"sequential, in this process: {n} runs in {alone:.2f} s "
              f"({1000 * alone / n:.1f} ms a run, {1000 * alone_cpu / n:.1f} ms CPU, "
              f"collector {1000 * alone_gc / n:.1f} ms)")
        pair = two_plain_processes(sweep)
        print(f"two plain processes at once, no Dask: {1000 * pair / n:.1f} ms CPU a run "
              f"({pair / alone_cpu:.2f}x sequential): the floor is {pair / 2 / alone_cpu:.2f}x")
        kinds = [("mxsim's cluster", False)] + [("Dask's defaults", True)] * args.compare_defaults
        for name, defaults in kinds:
            s = on_cluster(sweep, 2, dask_defaults=defaults)
            print(f"{name}: {_lines(2, s)}")
            print(f"  sweep on 2 workers / sequential: {s.wall / alone:.2f}x wall (goal at most "
                  f"0.6x); by CPU, (workers + this process) / 2 cores / sequential: "
                  f"{s.cpu / 2 / alone_cpu:.2f}x")
    elif args.what == "speedup":
        times = {}
        for workers in (1, 2):
            s = on_cluster(sweep, workers)
            times[workers] = s.wall
            print(_lines(workers, s))
        print(f"speed-up on 2 workers: {times[1] / times[2]:.2f}x (goal 1.7x)")
    else:
        print(_lines(2, on_cluster(sweep, 2, profile=args.out)))

if __name__ == "__main__":
    main()
