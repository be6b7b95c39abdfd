"""Typed check parameters: validated when the scenario loads, problems in
plain words, and the validated model is what the check receives."""
from __future__ import annotations

import pytest

from sim.evidence.checks import REGISTRY, run_check, validate_params
from sim.evidence.checks.params import NoParams
from sim.evidence.handlog import LogBuilder

HOSTS = ["relay.example", "mx1.example", "mx2.example"]


def test_a_misspelt_key_gets_a_did_you_mean():
    assert validate_params("max-recipients-30", {"relay": "relay.example", "limt": 30},
                           HOSTS) == [("limt", "unknown key; did you mean 'limit'?")]


def test_an_unknown_key_far_from_any_lists_the_keys():
    [(path, msg)] = validate_params("mx-fallback", {"primary": "mx1.example",
                                                    "secondary": "mx2.example", "zzz": 1})
    assert path == "zzz" and msg == "unknown key; the keys are grace, primary, secondary"
    assert validate_params("bounce-dsn", {"x": 1}) == [
        ("x", "unknown key; this check takes no parameters")]


def test_a_host_outside_the_scenario_names_the_known_hosts():
    [(path, msg)] = validate_params("mx-fallback", {"primary": "mx9.example",
                                                    "secondary": "mx2.example"}, HOSTS)
    assert path == "primary"
    assert msg == ("'mx9.example' is not a host of this scenario (its hosts: mx1.example, "
                   "mx2.example, relay.example)")


def test_hosts_in_lists_and_mapping_keys_are_checked_too():
    assert validate_params("etrn-flush", {"exchangers": ["mx1.example", "nope"],
                                          "domain": "d.example"}, HOSTS)[0][0] == "exchangers"
    [(path, msg)] = validate_params("retry-discipline",
                                    {"per_host": {"ghost.example": {"preset": "postfix"}}}, HOSTS)
    assert path == "per_host.ghost.example" and "ghost.example" in msg
    [(path, msg)] = validate_params("no-open-relay",
                                    {"roles": {"mx1.example": {"domain": ["x"]}}}, HOSTS)
    assert (path, msg) == ("roles.mx1.example.domain", "unknown key; did you mean 'domains'?")


def test_without_the_scenario_hosts_any_name_is_accepted():
    assert validate_params("mx-fallback", {"primary": "a", "secondary": "b"}) == []


def test_missing_and_mistyped_values_are_named_plainly():
    assert validate_params("mx-fallback", {"secondary": "mx2.example"}, HOSTS) == [
        ("primary", "required, but not given")]
    [(path, msg)] = validate_params("feed-queue-2d", {"feed": "mx1.example",
                                                      "client": "mx2.example",
                                                      "lifetime": "two days"})
    assert path == "lifetime" and "two days" in msg and "duration" in msg
    assert validate_params("max-recipients-30", {"relay": "r", "mode": "strict"}) == [
        ("mode", "expected 'conformant' or 'documented', got 'strict'")]
    assert validate_params("max-recipients-30", {"relay": "r", "limit": "many"}) == [
        ("limit", "expected a number, got 'many'")]
    assert validate_params("reply-codes", {"stage_classes": {"greylist": 3}}) == [
        ("stage_classes.greylist", "expected 4 or 5, got 3")]
    assert validate_params("no-open-relay", {}) == [
        ("", "expected 'roles' (host -> domains, networks) or 'hosts'")]


@pytest.mark.parametrize("gid", sorted(REGISTRY))
def test_no_message_uses_pydantic_wording(gid):
    bad = {"zz_unknown": object(), **{k: object() for k in REGISTRY[gid].params.model_fields}}
    for path, msg in validate_params(gid, bad, HOSTS):
        assert "pydantic" not in msg and "Input should" not in msg and "Value error" not in msg
        assert "validation error" not in msg.lower(), (gid, path, msg)


def test_every_check_declares_documented_parameters():
    for gid, chk in REGISTRY.items():
        for name, info in chk.params.model_fields.items():
            assert info.description, f"{gid}: parameter {name!r} has no description"
    assert REGISTRY["bounce-dsn"].params is NoParams


def test_durations_and_defaults_arrive_parsed():
    chk = REGISTRY["queueing-server-etrn"]
    from sim.evidence.checks.params import parse
    p = parse(chk.params, {"queue_server": "q", "delivery_server": "d", "domain": "x",
                           "within": "2m"})
    assert (p.lifetime, p.within) == (5 * 86400.0, 120.0)


def test_a_bad_parameter_at_judge_time_fails_undecided_with_the_plain_message():
    L = LogBuilder()
    L.accept(1, "relay.example", "m1", "t1", ["a@x.example"])
    r = run_check("max-recipients-30", L.end(10), {"relay": "relay.example", "limt": 3})
    assert (r.status, r.decided) == ("fail", False)
    assert r.detail == "bad parameters: limt: unknown key; did you mean 'limit'?"


def test_check_durations_use_the_scenario_grammar():
    from sim.evidence.checks.params import parse
    chk = REGISTRY["dialup-no-bounce"]
    assert parse(chk.params, {"domain": "x", "lifetime": "1w"}).lifetime == 7 * 86400.0
    [(path, msg)] = validate_params("dialup-no-bounce", {"domain": "x", "lifetime": "4h2d"})
    assert (path, msg) == ("lifetime", "expected units largest first and each once (like 2d4h), "
                                       "got '4h2d'")


def test_every_library_expectation_validates_against_its_scenario_hosts():
    from pathlib import Path

    from sim.pipeline import planned_expectations
    from sim.scenario.loader import load_scenario
    library = sorted((Path(__file__).resolve().parents[1] / "scenarios").glob("*.yaml"))
    assert library
    for path in library:
        sc = load_scenario(path)
        hosts = [h.name for h in sc.hosts]
        for e in sc.expectations:
            assert validate_params(e.guarantee, e.params, hosts) == [], (path.name, e.guarantee)
        for p in planned_expectations(sc):    # as completed for the log
            assert validate_params(p.guarantee, p.params, hosts) == [], (path.name, p.guarantee)
