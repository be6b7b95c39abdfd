"""Running a sweep's worlds on Dask distributed.

Each run is :func:`run_point` in a Dask task (several runs per task when
there are many per worker, :func:`chunk_sizes`): it loads its variant's
scenario text with the ordinary loader, runs it with
:func:`sim.pipeline.run_scenario` and returns the dataset rows.  The
client writes each run's part file as soon as its task finishes
(:func:`sim.sweep.dataset.write_part`), so the dataset grows while the
sweep runs and an interrupted sweep keeps what finished.

By default the work goes to a ``LocalCluster`` of worker *processes*, one
single-threaded worker per core (a world is CPU-bound Python, so threads
would share one GIL), started with :data:`LOCAL_CONFIG` and its workers'
start-up heap frozen out of the cyclic collector; ``scheduler`` names an
existing cluster instead, which is how a sweep outgrows one machine, and
which is used as it is.  Runs that are already in the dataset are skipped.
"""
from __future__ import annotations

import functools
import gc
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from sim.sweep import dataset
from sim.sweep.plan import Point, Vary
from sim.scenario.schema import Scenario
from sim.sweep.variants import Sweep, load_variant

#: How long to wait for an existing scheduler to answer before giving up.
CONNECT_TIMEOUT = "10s"

#: A task takes ``1 / (TASKS_PER_WORKER * workers)`` of the runs left, and at
#: most ``MAX_CHUNK`` runs (:func:`chunk_sizes`).
TASKS_PER_WORKER = 2
MAX_CHUNK = 16

#: Dask settings of the clusters mxsim starts (never of a ``--scheduler``'s,
#: which are its owner's).  The defaults wake each worker's event loop about
#: 160 times a second, taking the GIL from the world: the statistical profiler
#: samples every thread every 10 ms, every server measures its loop's latency
#: every 20 ms, the memory monitors look every 100 ms.  On a 2-worker sweep of
#: mx-fallback that was 22 ms of CPU a run in the workers' loops and 13 ms in
#: the client's process (scheduler and nannies), beside 280 ms of world; 3.5
#: and 4.7 ms with these (``benchmarks/sweep.py overhead``, loaded machine).
#: Nobody reads the profile (there is no dashboard); latency warnings (over
#: 3 s) and the memory limits still work at 1 s.
LOCAL_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
}

#: ``(finished run, its rows, runs done so far, runs in the plan)``.
OnDone = Callable[[Point, list[dict], int, int], None]


class ClusterError(RuntimeError):
    """The Dask scheduler named by ``--scheduler`` cannot be reached."""


@dataclass(frozen=True)
class SweepOutcome:
    """What a sweep did: how many runs it ran now, found done, and failed."""

    planned: int
    skipped: int
    ran: int
    errors: int


def run_point(text: str, label: str, scenario: str, varies: tuple[Vary, ...], point: Point,
              keep: str | None) -> list[dict]:
    """One world of the sweep, run and judged (a Dask task).

    With ``keep`` (a folder) the run's full output is written there, and
    its scenario as ``scenario.yaml``, so ``mxsim run`` reproduces it.
    """
    from sim.pipeline import run_scenario
    from sim.runner import RunnerError

    sc = _scenario(text, label)
    if keep is not None:
        Path(keep).mkdir(parents=True, exist_ok=True)
        header = f"# {label}; run with --seed {point.seed}\n"
        (Path(keep) / "scenario.yaml").write_text(header + text, encoding="utf-8")
    try:
        result = run_scenario(sc, seed=point.seed, out=keep, write=keep is not None)
    except RunnerError as exc:
        return dataset.rows(scenario, varies, point, None, error=str(exc))
    return dataset.rows(scenario, varies, point, result.verdict, len(result.events),
                        result.sim_time)


@functools.lru_cache(maxsize=16)
def _scenario(text: str, label: str) -> Scenario:
    # Points differing only in their seed share a variant (the seed varies
    # fastest, so a worker sees the same text again and again): parsed once.
    # Safe to share: a run never changes its scenario.
    return load_variant(text, label)


def warm(freeze: bool = False) -> None:
    """Import what every task needs (a worker's first task would pay it).

    ``freeze`` (the workers of a cluster mxsim started): then move every
    object alive, Dask's and mxsim's modules, to the collector's permanent
    generation, so the full collections during each world walk the world
    only; nothing of the worlds is frozen, and everything is still freed by
    reference counting.
    """
    import sim.explore.worlds
    import sim.pipeline
    import sim.runner  # noqa: F401

    if freeze:
        gc.collect()
        gc.freeze()


def connect(scheduler: str | None, workers: int | None):
    """A Dask client (and the cluster it made, to close, or None), every
    worker with mxsim imported and the part writer primed: that is
    start-up, not the first runs' time."""
    from dask.distributed import Client

    # Mostly waiting for workers to start: the writer primes meanwhile.
    writer = threading.Thread(target=dataset.prime, name="mxsim-prime-parquet", daemon=True)
    writer.start()
    try:
        if scheduler is not None:
            try:
                client, cluster = Client(scheduler, timeout=CONNECT_TIMEOUT), None
            except (OSError, TimeoutError, ValueError) as exc:
                raise ClusterError(f"--scheduler {scheduler}: cannot reach a Dask scheduler "
                                   f"there ({exc})") from None
        else:
            client, cluster = _local(workers)
        client.run(warm, freeze=cluster is not None)
    finally:
        writer.join()
    return client, cluster


def _local(workers: int | None):
    import dask
    from dask.distributed import Client, LocalCluster

    n = workers or os.cpu_count() or 1
    # The settings are read as the scheduler, the nannies and the workers
    # start (a nanny hands its worker process the configuration of that
    # moment); the caller's configuration is restored afterwards.
    with dask.config.set(LOCAL_CONFIG):
        # No dashboard; the scheduler's HTTP server (metrics) still starts, on a free
        # port rather than 8787, which another cluster on the machine may hold.
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=None,
                               scheduler_kwargs={"dashboard_address": ":0"},
                               silence_logs=logging.ERROR)
    return Client(cluster), cluster


def pending(sweep: Sweep, out: Path) -> list[Point]:
    """The points of ``sweep`` whose run is not yet in ``out``'s dataset."""
    done = dataset.done_runs(out)
    return [p for p in sweep.points() if p.run_id not in done]


def run_points(runs: list[tuple[str, str, Point, str | None]], scenario: str,
               varies: tuple[Vary, ...]) -> list[list[dict]]:
    """Several worlds of the sweep, one after another (one Dask task):
    ``(text, label, point, keep)`` each, the rows of each in order."""
    return [run_point(text, label, scenario, varies, point, keep)
            for text, label, point, keep in runs]


def chunk_sizes(runs: int, workers: int) -> list[int]:
    """Runs per task, in the order the tasks are submitted (and started):
    each takes its share of the runs left, ``1 / (TASKS_PER_WORKER * workers)``
    of them, between one and :data:`MAX_CHUNK`.

    A task costs the client and scheduler a few ms of CPU on the cores the
    workers use (``benchmarks/sweep.py``), a tenth of a short world: big
    tasks first amortise it.  Shrinking ones keep the end short: the last
    tasks are single runs, so no worker idles for long while the other
    finishes (with tasks of six runs each, the last one could leave the
    other worker idle for six runs' time).  At most :data:`MAX_CHUNK` runs per task keep the dataset
    growing, and an interrupt losing little.
    """
    sizes: list[int] = []
    left = runs
    while left > 0:
        sizes.append(max(1, min(MAX_CHUNK, left // (TASKS_PER_WORKER * max(1, workers)))))
        left -= sizes[-1]
    return sizes


def run_sweep(sweep: Sweep, out: Path, *, client, keep_runs: bool = False,
              on_done: OnDone | None = None) -> SweepOutcome:
    """Run every point of ``sweep`` not yet in ``out``'s dataset on ``client``."""
    from dask.distributed import as_completed

    points = sweep.points()
    todo = pending(sweep, out)
    futures = {}
    start = 0
    for size in chunk_sizes(len(todo), sum(client.nthreads().values())):
        chunk = todo[start:start + size]
        start += size
        runs = [(sweep.scenario_text(p), sweep.label(p.values), p,
                 str((out / "runs" / p.run_id).resolve()) if keep_runs else None) for p in chunk]
        fut = client.submit(run_points, runs, sweep.name, sweep.varies,
                            key=f"mxsim-sweep-{sweep.digest[:12]}-{chunk[0].run_id}", pure=False)
        futures[fut] = chunk
    finished = len(points) - len(todo)
    errors = 0
    for fut in as_completed(futures):
        for point, run_rows in zip(futures[fut], fut.result()):
            dataset.write_part(out, sweep.varies, point.run_id, run_rows)
            finished += 1
            errors += any(r["error"] for r in run_rows)
            if on_done is not None:
                on_done(point, run_rows, finished, len(points))
    return SweepOutcome(len(points), len(points) - len(todo), len(todo), errors)
