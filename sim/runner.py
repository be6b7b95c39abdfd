"""Run stage: a validated scenario in, the event log of its world out.

:func:`run` builds a :class:`~sim.world.core.World` for the scenario, writes
the expectations into the log right after ``RunStarted`` (so a report can
be rebuilt from the log alone), wires the components and actors
(:mod:`sim.wiring`), and runs it in fixed slices of simulated time: the same
slices whether or not anyone watches, so the log never depends on the
terminal.  Given a path, the run writes its log there as events are
emitted (:class:`~mta.events.sinks.RunLogSink`, flushed after every
slice), so the file is there even when the run fails.  Judging and the
report are later stages (:mod:`sim.pipeline`).

The run is a pure function of the scenario, the expectations and the seed:
every random source is derived from the seed by name, and nothing reads the
wall clock except the wall-time figure reported to the user (never logged).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from mta import events as ev
from mta.events.sinks import MemorySink, RunLogSink
from sim.convert import Unsupported, describe
from sim.events import GuaranteeExpected, ScenarioDescribed
from sim.scenario.schema import Scenario
from sim.wiring import WiringError, wire
from sim.world.core import World
from sim.world.loop import SimulationError

#: Simulated time is advanced in this many equal slices (progress updates).
SLICES = 200
#: The ``host`` of the events the runner itself writes (expectations).
RUNNER_HOST = "mxsim"

Progress = Callable[[float, float, int], None]   # (now, duration, in flight)


class RunnerError(Exception):
    """The scenario is valid but cannot be run here (a component it needs is
    missing, the components refused it, or component code failed); the
    message says what and why."""


@dataclass(frozen=True)
class Planned:
    """One expectation as it goes into the log: ``params`` are complete."""

    guarantee: str
    expected: str
    params: dict[str, Any]
    why: str = ""
    because: str = ""


@dataclass
class Run:
    """What one run produced: its log, and how long it took."""

    scenario: Scenario
    seed: int
    events: list[ev.Event]
    sim_time: float
    wall_time: float


class PartialRun(RunnerError):
    """Component code failed mid-run; ``events`` is the log up to then."""

    def __init__(self, message: str, events: list[ev.Event]) -> None:
        super().__init__(message)
        self.events = events


def run(sc: Scenario, seed: int, expectations: Iterable[Planned] = (),
        progress: Progress | None = None, log: str | os.PathLike | None = None) -> Run:
    """Run ``sc`` with ``seed`` to its duration and return the log.

    With ``log``, the canonical lines are written to that file during the
    run (replacing it).  Raises :class:`RunnerError` if the world cannot be
    built with the components present (then ``log`` is removed: nothing
    ran), and :class:`PartialRun` (with the log so far, also in ``log``) if
    component code raised during the run.
    """
    wall0 = time.perf_counter()   # reported to the user only, never logged
    if log is None:
        return _run(sc, seed, expectations, progress, MemorySink(), wall0)
    sink = RunLogSink(log)
    try:
        return _run(sc, seed, expectations, progress, sink, wall0)
    except PartialRun:
        raise
    except RunnerError:
        sink.close()
        Path(log).unlink(missing_ok=True)
        raise
    finally:            # an interrupted run keeps its log so far too
        sink.close()


def _run(sc: Scenario, seed: int, expectations: Iterable[Planned], progress: Progress | None,
         sink: MemorySink | RunLogSink, wall0: float) -> Run:
    world = World(seed=seed, scenario=sc.name, sink=sink)
    for e in expectations:
        sink.emit(GuaranteeExpected(t=0.0, host=RUNNER_HOST, guarantee=e.guarantee,
                                    expected=e.expected, params=e.params, why=e.why,
                                    because=e.because))
    sink.emit(ScenarioDescribed(t=0.0, host=RUNNER_HOST, description=sc.description,
                                topology=describe(sc),
                                waived={g: sc.waive[g] for g in sorted(sc.waive)}))
    try:
        built = wire(world, sc)
    except (WiringError, Unsupported) as exc:
        raise RunnerError(str(exc)) from None
    step = sc.duration / SLICES
    try:
        for i in range(1, SLICES + 1):
            world.run(until=sc.duration if i == SLICES else step * i)
            if isinstance(sink, RunLogSink):
                sink.flush()
            if progress is not None:
                progress(world.now(), sc.duration, built.in_flight())
        world.finish()
    except SimulationError as exc:
        # A component raised: the run proves nothing.
        raise PartialRun(f"component code failed at t={world.now():g} s: {exc}",
                         list(sink.events)) from None
    # A copy: tasks torn down after the end may still report to the sink.
    return Run(sc, seed, list(sink.events), sc.duration, time.perf_counter() - wall0)
