"""The whole pipeline, composed: file -> model -> convert -> wire -> run -> judge -> show.

Each stage is its own module and imports only the stages before it; this
module is the one place that calls them in order, for every face that runs
scenarios (``mxsim run`` and ``check``, the pytest plugin, notebooks):

* :func:`sim.scenario.loader.load_scenario` (file -> validated model);
* :func:`planned_expectations`: the expectations with the parameters the
  evidence layer completes from the converted configuration;
* :func:`sim.runner.run` (wire and run -> the event log);
* :func:`write_outputs` / :func:`sim.evidence.verdict.build_verdict` (judge)
  and :func:`sim.report.write.write_report` (show).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mta import events as ev
from sim.convert import host_retry
from sim.evidence.derive import complete_params
from sim.evidence.log import read_jsonl, write_jsonl
from sim.evidence.verdict import build_verdict
from sim.report.write import REPORT_HTML, REPORT_MD, VERDICT, write_report
from sim.runner import PartialRun, Planned, Progress, RunnerError, run
from sim.scenario.schema import Scenario


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
    """What one run produced, judged."""

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


def planned_expectations(sc: Scenario) -> list[Planned]:
    """The scenario's expectations with complete parameters."""
    retry = host_retry(sc)
    return [Planned(e.guarantee, e.expect, complete_params(e.guarantee, e.params, retry))
            for e in sc.expectations]


def default_out(sc: Scenario) -> Path:
    return Path("reports") / sc.name


def run_scenario(sc: Scenario, *, seed: int | None = None, out: str | Path | None = None,
                 progress: Progress | None = None, write: bool = True) -> RunResult:
    """Run ``sc`` (with ``seed`` instead of the file's, if given) and judge it.

    Writes ``events.jsonl``, ``verdict.json``, ``report.md`` and
    ``report.html`` into ``out`` (default ``reports/<name>/``) unless
    ``write`` is false.  Raises :class:`~sim.runner.RunnerError` if the
    world cannot be built or its component code fails (then the log so far
    is written, for debugging, and the message says where).
    """
    seed = sc.seed if seed is None else int(seed)
    folder = Path(out) if out is not None else default_out(sc)
    try:
        done = run(sc, seed, planned_expectations(sc), progress)
    except PartialRun as exc:
        where = ""
        if write:
            folder.mkdir(parents=True, exist_ok=True)
            where = f"; the log so far is in {write_jsonl(exc.events, folder / 'events.jsonl')}"
        raise RunnerError(f"{exc}{where}") from None
    result = RunResult(sc, seed, None, done.events, [], {}, done.sim_time, done.wall_time, {})
    if write:
        result.out = folder
        result.files, result.verdict = write_outputs(folder, done.events)
    else:
        result.verdict = build_verdict(done.events)
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
    out.mkdir(parents=True, exist_ok=True)
    log = write_jsonl(events, out / "events.jsonl")
    report = write_report(read_jsonl(log), out)
    return [log] + [out / name for name in (VERDICT, REPORT_MD, REPORT_HTML)], report.verdict
