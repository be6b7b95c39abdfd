"""The scenario library runs, meets every expectation it states, and gives
exactly its golden verdict (``scenarios/golden/``, see tests/helpers/golden.py).

Slow: the whole library is several simulated weeks; CI runs it with -m slow,
and ``pytest scenarios/`` / ``mxsim check scenarios/`` run it too."""
from pathlib import Path

import pytest

from sim.pipeline import run_scenario
from sim.scenario.loader import load_scenario
from helpers.golden import check_golden

LIBRARY = sorted((Path(__file__).resolve().parent.parent / "scenarios").glob("*.yaml"))


@pytest.mark.slow
@pytest.mark.parametrize("path", LIBRARY, ids=[p.stem for p in LIBRARY])
def test_library_scenario_meets_its_expectations_with_its_golden_verdict(path):
    result = run_scenario(load_scenario(path), write=False)
    unmet = [(g.id, g.expected, g.status, g.detail) for g in result.verdict.guarantees
             if not g.met]
    assert not unmet
    drift = check_golden(path.stem, result.verdict.to_dict())
    assert drift is None, "the verdict drifted from its golden file:\n" + drift


def test_every_golden_verdict_has_its_scenario():
    from helpers.golden import GOLDEN
    assert sorted(p.stem for p in GOLDEN.glob("*.json")) == sorted(p.stem for p in LIBRARY)


@pytest.mark.slow
def test_flagship_is_deterministic(tmp_path):
    sc = load_scenario(Path(__file__).resolve().parent.parent / "scenarios"
                       / "queueing-server-etrn.yaml")
    a = run_scenario(sc, out=tmp_path / "a")
    b = run_scenario(sc, out=tmp_path / "b")
    assert (a.out / "events.jsonl").read_bytes() == (b.out / "events.jsonl").read_bytes()
    assert (a.out / "verdict.json").read_bytes() == (b.out / "verdict.json").read_bytes()


def test_a_drifted_verdict_is_caught_with_a_readable_diff():
    from helpers.golden import GOLDEN, render
    import json
    name = "dialup-primary-loses-mail"   # has counterexamples with events
    verdict = json.loads((GOLDEN / f"{name}.json").read_text())
    assert check_golden(name, verdict) is None        # the digested form is stable
    verdict["counts"]["lost"] = verdict["counts"].get("lost", 0) + 1
    diff = check_golden(name, verdict)
    assert diff is not None and '+    "lost": ' in diff and render(verdict) != ""
