"""The whole pipeline, composed: file -> model -> convert -> wire -> run -> judge -> show.

Each stage is its own module and imports only the stages before it; this
module is the one place that calls them in order, for every face that runs
scenarios (``mxsim run`` and ``check``, the pytest plugin, notebooks):

* :func:`load` (file -> validated model: :func:`sim.scenario.loader.load_scenario`
  with each expectation's parameters checked by its check's parameter model);
* :func:`planned_expectations`: the expectations with the parameters the
  evidence layer completes from the converted configuration;
* :func:`sim.runner.run` (wire and run -> the event log);
* :func:`write_outputs` / :func:`sim.evidence.verdict.build_verdict` (judge)
  and :func:`sim.report.write.write_report` (show).

The judged run is a :class:`RunResult` holding the typed
:class:`~sim.evidence.verdict.Verdict`, which every face reads.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sim.evidence.checks import validate_because, validate_params
from sim.scenario.loader import Problem, load_scenario, load_text
from sim.scenario.schema import Scenario

if TYPE_CHECKING:
    from mta import events as ev
    from sim.evidence.lifecycle import Counts
    from sim.evidence.model import Evidence
    from sim.evidence.verdict import Verdict
    from sim.runner import Planned, Progress

# Loading and validating a scenario must not pay for what runs and judges it
# (``mxsim validate``, start-up goals in DESIGN.md): the runner (the simulated
# world and every component), the evidence model with the event classes, the
# checks and the report (the plots) are imported where they are used.


#: The maillog's file name in a run's output folder.
MAILLOG = "maillog"


def check_params(guarantee: str, params: dict, hosts: list[str]) -> list[tuple[tuple, str]]:
    """The loader's parameter validation: each expectation's ``params``
    against its check's parameter model (unknown keys, wrong types, host
    names that are not the scenario's)."""
    return [((key,) if key else (), message)
            for key, message in validate_params(guarantee, params, hosts)]


def load(path: str | Path, warnings: list[Problem] | None = None) -> Scenario:
    """Read and validate a scenario file, check parameters included; raises
    :class:`~sim.scenario.loader.ScenarioError` listing every problem."""
    return load_scenario(path, warnings=warnings, check_params=check_params,
                         check_because=validate_because)


def load_string(text: str, filename: str = "<scenario>",
                warnings: list[Problem] | None = None) -> Scenario:
    """:func:`load` for scenario text."""
    return load_text(text, filename, warnings=warnings, check_params=check_params,
                     check_because=validate_because)


@dataclass(frozen=True)
class RunResult:
    """What one run produced, judged: the log and its verdict."""

    scenario: Scenario
    seed: int
    out: Path | None               # None: nothing was written
    events: list[ev.Event]
    verdict: Verdict
    sim_time: float
    wall_time: float
    files: list[Path] = field(default_factory=list)

    @property
    def met(self) -> bool:
        """Every expectation is met."""
        return self.verdict.ok

    @property
    def counts(self) -> Counts:
        return self.verdict.counts

    def in_flight(self) -> int:
        """Recipients still queued at the end of the run."""
        return self.verdict.counts.queued

    def properties(self) -> list[tuple[str, float | int]]:
        """The run's figures for test reports (JUnit properties, pytest
        user properties): seed, simulated time, events, then every count."""
        return [("seed", self.seed), ("sim_time", self.sim_time),
                ("events", len(self.events)), *self.verdict.counts.items()]


def planned_expectations(sc: Scenario) -> list[Planned]:
    """The scenario's expectations with complete parameters."""
    from sim.evidence.derive import complete_params, declared_retry
    from sim.runner import Planned
    retry = declared_retry(sc)
    return [Planned(e.guarantee, e.expect, complete_params(e.guarantee, e.params, retry), e.why,
                    e.because or "")
            for e in sc.expectations]


def default_out(sc: Scenario) -> Path:
    return Path("reports") / sc.name


def run_scenario(sc: Scenario, *, seed: int | None = None, out: str | Path | None = None,
                 progress: Progress | None = None, write: bool = True) -> RunResult:
    """Run ``sc`` (with ``seed`` instead of the file's, if given) and judge it.

    Writes ``events.jsonl`` (during the run), ``maillog``, ``verdict.json``,
    ``report.md`` and ``report.html`` into ``out`` (default
    ``reports/<name>/``) unless ``write`` is false.  Raises
    :class:`~sim.runner.RunnerError` if the world cannot be built or its
    component code fails (then ``events.jsonl`` holds the log so far, for
    debugging, and the message says where).
    """
    from sim.evidence.model import Evidence
    from sim.evidence.verdict import build_verdict
    from sim.runner import PartialRun, RunnerError, run
    seed = sc.seed if seed is None else int(seed)
    folder = Path(out) if out is not None else default_out(sc)
    log = None
    if write:
        folder.mkdir(parents=True, exist_ok=True)
        log = folder / "events.jsonl"
    try:
        done = run(sc, seed, planned_expectations(sc), progress, log=log)
    except PartialRun as exc:
        where = f"; the log so far is in {log}" if log is not None else ""
        raise RunnerError(f"{exc}{where}") from None
    evidence = Evidence(done.events)
    verdict = build_verdict(evidence)
    if log is None:
        return RunResult(sc, seed, None, done.events, verdict, done.sim_time, done.wall_time)
    files, verdict = write_outputs(folder, evidence, logged=True, verdict=verdict)
    return RunResult(sc, seed, folder, done.events, verdict, done.sim_time, done.wall_time, files)


def write_outputs(out: Path, events: list[ev.Event] | Evidence, logged: bool = False,
                  verdict: Verdict | None = None) -> tuple[list[Path], Verdict]:
    """``events.jsonl`` (unless ``logged``: the run wrote it already), the
    ``maillog`` (Postfix syslog lines of every role, :mod:`mta.maillog`)
    and the evidence layer's verdict (unless given: that of ``events``,
    judged already) and report.

    The report is judged from the log as the file holds it, so that
    ``mxsim report DIR`` later gives the very same bytes: a run's events
    are that already (its sink and the events' float fields see to it,
    :mod:`mta.events.sinks`), other events (an import) are read back.
    """
    from mta.maillog import maillog_lines
    from sim.actors.generate import SIM_EPOCH
    from sim.evidence.log import read_jsonl, write_jsonl
    from sim.evidence.model import Evidence
    from sim.report.write import REPORT_HTML, REPORT_MD, VERDICT, write_report
    out.mkdir(parents=True, exist_ok=True)
    log = out / "events.jsonl"
    raw = events.events if isinstance(events, Evidence) else events
    if not logged:
        events = raw = read_jsonl(write_jsonl(raw, log))
        verdict = None            # judged on what was read back
    maillog = out / MAILLOG
    with open(maillog, "w", encoding="utf-8") as fh:
        # Streamed: a week's maillog is hundreds of megabytes of lines.
        fh.writelines(f"{line}\n" for line in maillog_lines(raw, SIM_EPOCH))
    report = write_report(events, out, verdict)
    return [log, maillog] + [out / name for name in (VERDICT, REPORT_MD, REPORT_HTML)], \
        report.verdict
