"""No check passes on nothing: every result says how much it judged, and a
pass on zero evidence is undecidable."""
from __future__ import annotations

from pathlib import Path

import pytest

from sim.events import RunEnded, RunStarted
from sim.evidence.checks import REGISTRY, run_check
from sim.evidence.checks.base import verdict
from sim.pipeline import load, planned_expectations

LIBRARY = sorted(Path(__file__).resolve().parent.parent.joinpath("scenarios").glob("*.yaml"))
EXPECTATIONS = [(p.stem, i, x) for p in LIBRARY
                for i, x in enumerate(planned_expectations(load(p)))]


def test_a_pass_on_zero_evidence_is_undecidable_and_says_what_was_missing():
    r = verdict("bounce-dsn", [], ok="all well formed", bad="{n} bad",
                judged=0, unit="bounces and DSNs")
    assert (r.status, r.decided, r.judged) == ("fail", False, None)
    assert r.detail == "undecidable: nothing to judge: 0 bounces and DSNs in the log"
    r = verdict("bounce-dsn", [], ok="all well formed", bad="{n} bad", judged=3,
                unit="bounces and DSNs")
    assert (r.status, r.decided, r.judged, r.unit) == ("pass", True, 3, "bounces and DSNs")


def test_a_failure_keeps_its_evidence_count():
    r = verdict("bounce-dsn", [{"why": "x"}], ok="", bad="{n} bad", judged=4, unit="bounces")
    assert (r.status, r.decided, r.judged, r.detail) == ("fail", True, 4, "1 bad")


@pytest.mark.parametrize("name,index,planned", EXPECTATIONS,
                         ids=[f"{n}[{i}]-{x.guarantee}" for n, i, x in EXPECTATIONS])
def test_no_library_expectation_passes_on_an_empty_log(name, index, planned):
    """With the library scenario's own parameters, a run where nothing
    happened decides nothing."""
    log = [RunStarted(t=0.0, host="mxsim", scenario=name, seed=1),
           RunEnded(t=86400.0, host="mxsim")]
    r = run_check(planned.guarantee, log, planned.params)
    assert (r.status, r.decided) == ("fail", False), r.detail
    assert r.detail.startswith("undecidable: "), r.detail


def test_every_catalogue_check_is_named_by_some_library_scenario():
    named = {x.guarantee for _, _, x in EXPECTATIONS}
    assert sorted(set(REGISTRY) - named) == []


def test_every_check_has_a_planted_fault_test_on_a_real_log():
    """Each check is judged on a real run's log with its fault planted
    (tests/test_planted_*.py, built on tests/helpers/planting.py)."""
    tests = Path(__file__).resolve().parent
    text = "".join(p.read_text() for p in sorted(tests.glob("test_planted_*.py")))
    assert [gid for gid in sorted(REGISTRY) if f'"{gid}"' not in text] == []
