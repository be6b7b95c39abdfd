"""The scenario library runs and meets every expectation it states (slow:
the whole library is several simulated weeks; CI runs it with -m slow, and
``pytest scenarios/`` / ``mxsim check scenarios/`` run it too)."""
from pathlib import Path

import pytest

from sim.pipeline import run_scenario
from sim.scenario.loader import load_scenario

LIBRARY = sorted((Path(__file__).resolve().parent.parent / "scenarios").glob("*.yaml"))


@pytest.mark.slow
@pytest.mark.parametrize("path", LIBRARY, ids=[p.stem for p in LIBRARY])
def test_library_scenario_meets_its_expectations(path):
    result = run_scenario(load_scenario(path), write=False)
    unmet = [(g.id, g.expected, g.status, g.detail) for g in result.verdict.guarantees
             if not g.met]
    assert not unmet


@pytest.mark.slow
def test_flagship_is_deterministic(tmp_path):
    sc = load_scenario(Path(__file__).resolve().parent.parent / "scenarios"
                       / "queueing-server-etrn.yaml")
    a = run_scenario(sc, out=tmp_path / "a")
    b = run_scenario(sc, out=tmp_path / "b")
    assert (a.out / "events.jsonl").read_bytes() == (b.out / "events.jsonl").read_bytes()
    assert (a.out / "verdict.json").read_bytes() == (b.out / "verdict.json").read_bytes()
