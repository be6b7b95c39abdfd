"""An expected violation names its cause (``because:``) and is met only by a
counterexample of that cause."""
from __future__ import annotations

from pathlib import Path

import pytest

from sim.evidence.verdict import met
from sim.pipeline import load_string, run_scenario
from sim.scenario.loader import ScenarioError
from helpers.scenarios import WRONG

LIBRARY = Path(__file__).resolve().parent.parent / "scenarios"


def test_met_needs_the_named_cause():
    assert met("violated", "fail", True, "", {"a": 1})
    assert met("violated", "fail", True, "a", {"a": 1, "b": 3})
    assert not met("violated", "fail", True, "b", {"a": 1})
    assert not met("violated", "fail", False, "a", {"a": 1})
    assert not met("violated", "pass", True, "a", {})


@pytest.fixture(scope="module")
def lossy_run(tmp_path_factory):
    """max-recipients-documented: the relay drops recipients 31-40 after its 250."""
    text = (LIBRARY / "max-recipients-documented.yaml").read_text()
    out = tmp_path_factory.mktemp("because")
    return text, run_scenario(load_string(text, "mrd.yaml"), out=out / "a")


def test_the_library_violation_is_met_by_its_cause(lossy_run):
    _, res = lossy_run
    [g] = [g for g in res.verdict.guarantees if g.id == "conservation"]
    assert g.met and g.because == "dropped-over-limit"
    assert g.causes == {"dropped-over-limit": 70}
    assert all(c["cause"] == "dropped-over-limit" for c in g.counterexamples)
    # the counterexample carries the policy decision that dropped the recipient
    kinds = {e["kind"] for e in g.counterexamples[0]["events"]}
    assert "policy_decision" in kinds


def test_another_cause_does_not_meet_it(lossy_run, tmp_path):
    text, _ = lossy_run
    other = text.replace("because: dropped-over-limit", "because: never-queued")
    res = run_scenario(load_string(other, "mrd.yaml"), out=tmp_path / "b")
    [g] = [g for g in res.verdict.guarantees if g.id == "conservation"]
    assert g.status == "fail" and g.decided and not g.met
    from sim.report.failures import verdict_line
    assert verdict_line(g).startswith("conservation: expected violated because never-queued, "
                                      "fail (causes found: dropped-over-limit): ")


def test_a_cause_the_check_does_not_name_is_refused_with_the_choices():
    text = WRONG.replace("    expect: violated\n", "    expect: violated\n    because: primary-away\n")
    with pytest.raises(ScenarioError) as err:
        load_string(text, "w.yaml")
    msg = str(err.value)
    assert "w.yaml:" in msg and "expectations[0].because" in msg
    assert "the mx-fallback check names no causes" in msg


def test_a_misspelt_cause_gets_a_suggestion():
    text = (LIBRARY / "dialup-primary-loses-mail.yaml").read_text().replace(
        "because: sender-gave-up-while-link-down", "because: sender-gave-up-while-link-dwn")
    with pytest.raises(ScenarioError) as err:
        load_string(text, "d.yaml")
    assert "(did you mean 'sender-gave-up-while-link-down'?)" in str(err.value)


def test_because_needs_an_expected_violation():
    text = WRONG.replace("    expect: violated\n", "    because: x\n")
    with pytest.raises(ScenarioError) as err:
        load_string(text, "w.yaml")
    assert "'because' names the cause of an expected violation: it needs 'expect: violated'" \
        in str(err.value)


def test_every_cause_is_documented():
    from sim.evidence.checks import REGISTRY
    doc = (LIBRARY.parent / "docs" / "guarantees.md").read_text()
    for gid, chk in REGISTRY.items():
        for cause, meaning in chk.causes:
            assert f"| `{gid}` | `{cause}` | {meaning} |" in doc
