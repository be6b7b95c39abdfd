"""Run a scenario: build the world, run it to ``duration``, judge it.

:func:`run_scenario` is what ``mxsim run``, ``mxsim check`` and the pytest
plugin call.  It builds a :class:`~sim.world.core.World` from a validated
scenario (hosts and links, zones, roles wired to the mta components, traffic
actors), runs it in fixed slices of simulated time (the same slices whether
or not anyone watches, so the log never depends on the terminal), writes
``events.jsonl`` and the evidence layer's verdict and report into the out
folder, and returns a :class:`RunResult`.

The run is a pure function of the scenario and the seed: every random
source is derived from the seed by name, and nothing reads the wall clock
except the wall-time figure reported to the user (never logged).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from mta import events as ev
from mta.events.sinks import MemorySink
from sim.events import LinkUp
from sim.world.loop import SimulationError
from sim.scenario.schema import Scenario

#: Simulated time is advanced in this many equal slices (progress updates).
SLICES = 200
RUNNER_HOST = "mxsim"


class RunnerError(Exception):
    """The scenario is valid but cannot be run here (a component it needs is
    missing, or the world refused it); the message says what and why."""


@dataclass
class Expectation:
    """One expectation and what the run showed."""

    guarantee: str
    expected: str
    status: str            # the check's result: pass (held) or fail
    detail: str
    decided: bool
    met: bool
    counterexamples: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    """What one run produced."""

    scenario: Scenario
    seed: int
    out: Path | None
    events: list[ev.Event]
    expectations: list[Expectation]
    counts: dict[str, int]
    sim_time: float
    wall_time: float
    verdict: dict[str, Any]
    files: list[Path] = field(default_factory=list)

    @property
    def met(self) -> bool:
        return all(e.met for e in self.expectations)

    def in_flight(self) -> int:
        """Recipients still queued at the end of the run."""
        return int(self.counts.get("queued", 0))


Progress = Callable[[float, float, int], None]   # (now, duration, in flight)


class ObservedSink(MemorySink):
    """The run's event sink: keeps every event and tells listeners about
    link changes (the dial-up customer acts on its link coming up)."""

    def __init__(self) -> None:
        super().__init__()
        self.on_link_up: dict[str, list[Callable[[], None]]] = {}

    def emit(self, event: ev.Event) -> None:
        super().emit(event)
        if isinstance(event, LinkUp):
            for callback in self.on_link_up.get(event.host, ()):
                callback()


def run_scenario(sc: Scenario, *, seed: int | None = None, out: str | Path | None = None,
                 progress: Progress | None = None, write: bool = True) -> RunResult:
    """Run ``sc`` (with ``seed`` instead of the file's, if given) and judge it.

    Writes ``events.jsonl``, ``verdict.json``, ``report.md`` and
    ``report.html`` into ``out`` (default ``reports/<name>/``) unless
    ``write`` is false.  Raises :class:`RunnerError` if the world cannot be
    built with the components present.
    """
    from sim.wiring import assemble   # the wiring of roles and actors

    seed = sc.seed if seed is None else int(seed)
    wall0 = time.perf_counter()   # reported to the user only, never logged
    sink = ObservedSink()
    built = assemble(sc, seed, sink)
    world = built.world
    step = sc.duration / SLICES
    try:
        for i in range(1, SLICES + 1):
            world.run(until=sc.duration if i == SLICES else step * i)
            if progress is not None:
                progress(world.now(), sc.duration, built.in_flight())
        world.finish()
    except SimulationError as exc:
        # A component raised: the run proves nothing.  Keep the log for
        # debugging, and say so instead of judging it.
        where = ""
        if write:
            from sim.evidence.log import write_jsonl
            folder = Path(out) if out is not None else Path("reports") / sc.name
            folder.mkdir(parents=True, exist_ok=True)
            where = f"; the log so far is in {write_jsonl(sink.events, folder / 'events.jsonl')}"
        raise RunnerError(f"component code failed at t={world.now():g} s: {exc}{where}") from None
    events = list(sink.events)
    wall = time.perf_counter() - wall0
    result = RunResult(sc, seed, None, events, [], {}, sc.duration, wall, {})
    if write:
        result.out = Path(out) if out is not None else Path("reports") / sc.name
        result.files, result.verdict = write_outputs(result.out, events)
    else:
        from sim.report.write import build_verdict
        result.verdict = build_verdict(events)
    result.counts = dict(result.verdict.get("counts", {}))
    result.expectations = [
        Expectation(g["id"], g["expected"], g["status"], g["detail"], g["decided"], g["met"],
                    list(g.get("counterexamples", [])), dict(g.get("params", {})))
        for g in result.verdict.get("guarantees", [])]
    return result


def write_outputs(out: Path, events: list[ev.Event]) -> tuple[list[Path], dict[str, Any]]:
    """``events.jsonl`` and the evidence layer's verdict and report.

    The report is built from the log as written (read back), so that
    ``mxsim report DIR`` later gives the very same bytes.
    """
    from sim.evidence.log import read_jsonl, write_jsonl
    from sim.report.write import REPORT_HTML, REPORT_MD, VERDICT, write_report

    out.mkdir(parents=True, exist_ok=True)
    log = write_jsonl(events, out / "events.jsonl")
    report = write_report(read_jsonl(log), out)
    return [log] + [out / name for name in (VERDICT, REPORT_MD, REPORT_HTML)], report.verdict
