"""pytest plugin: scenario files as tests, one test per expectation.

``pytest scenarios/`` collects every ``*.yaml`` file in a folder named
``scenarios`` as a :class:`ScenarioFile`; each expectation in it becomes a
:class:`ExpectationItem` named after its guarantee.  The scenario runs once
(on the first of its items) and writes its report to ``reports/<name>/``,
as ``mxsim run`` would.  A failure shows the check's detail and the
counterexample timelines; the run's counts go into the JUnit XML as
``user_properties``.  An invalid file is one failing item that prints the
problems (file, line, key path, what was expected).

Enable it with ``scenarios/conftest.py`` (in the repository) or the
``pytest11`` entry point ``mxsim = "sim.pytest_plugin"``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sim.evidence.verdict import case_names
from sim.pipeline import RunResult, load, run_scenario
from sim.report.failures import failure_text
from sim.runner import RunnerError
from sim.scenario.loader import ScenarioError

REPORTS = Path("reports")


class ExpectationNotMet(Exception):
    """An expectation of a scenario was not met; the message says why."""


class ScenarioProblem(Exception):
    """A scenario file is invalid or cannot run; the message says why."""


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, keep each scenario file's items on one worker.

    A scenario runs once for all its expectations; spread over workers it
    would run once per worker and race on its report folder.  So when the
    session collects scenario folders with the default ``--dist load``, it
    is switched to ``loadfile`` (an explicit other choice is respected).
    """
    option = config.option
    if getattr(option, "dist", "no") == "load" and not getattr(option, "distload", False) \
            and any(_names_scenarios(arg) for arg in config.args):
        option.dist = "loadfile"


def _names_scenarios(arg: str) -> bool:
    path = Path(arg.split("::")[0])
    return path.name == "scenarios" or path.parent.name == "scenarios" or \
        (path.is_dir() and (path / "scenarios").is_dir())


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    if file_path.suffix in (".yaml", ".yml") and file_path.parent.name == "scenarios":
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    """One scenario file: runs once, judged per expectation."""

    _result: RunResult | None = None
    _error: str | None = None

    def collect(self):
        try:
            self.scenario = load(self.path)
        except ScenarioError as exc:
            yield InvalidScenario.from_parent(self, name="scenario", message=str(exc))
            return
        names = case_names([e.guarantee for e in self.scenario.expectations])
        for index, name in enumerate(names):
            yield ExpectationItem.from_parent(self, name=name, index=index)

    def result(self) -> RunResult:
        """The run, done on first use and shared by the file's items."""
        if self._error is not None:
            raise ScenarioProblem(self._error)
        if self._result is None:
            try:
                self._result = run_scenario(self.scenario, out=REPORTS / self.scenario.name)
            except RunnerError as exc:
                self._error = f"{self.path}: cannot run: {exc}"
                raise ScenarioProblem(self._error) from None
        return self._result


class InvalidScenario(pytest.Item):
    """Stands for a file that does not validate."""

    def __init__(self, *, message: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.message = message

    def runtest(self) -> None:
        raise ScenarioProblem(self.message)

    def repr_failure(self, excinfo, style=None) -> str:
        return str(excinfo.value)

    def reportinfo(self):
        return self.path, None, f"{self.path.name}: invalid scenario"


class ExpectationItem(pytest.Item):
    """One expectation of a scenario."""

    def __init__(self, *, index: int, **kw: Any) -> None:
        super().__init__(**kw)
        self.index = index

    def runtest(self) -> None:
        result = self.parent.result()
        g = result.verdict.guarantees[self.index]
        self.user_properties += [*result.properties(), ("status", g.status)]
        if not g.met:
            raise ExpectationNotMet(failure_text(result.verdict, self.index, result.events))

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, (ExpectationNotMet, ScenarioProblem)):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"{self.parent.scenario.name}::{self.name}"
