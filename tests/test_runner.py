"""The runner: a scenario in, a deterministic log, a verdict and a report out."""
import json

import pytest
import yaml

from mta import events as ev
from mta.events.sinks import MemorySink
from sim import events as sev
from sim import convert as build
from sim.pipeline import planned_expectations, run_scenario
from sim.runner import RunnerError
from sim.world.network import LinkSpec
from sim.scenario.loader import ScenarioError, load_text
from sim.scenario.schema import Scenario
from sim.world.schedules import AlwaysUp, DialupWindows, Intervals, Outages, RandomOnOff
from helpers.scenarios import SMALL, WRONG


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "small"
    return run_scenario(load_text(SMALL, "small.yaml"), out=out)


def test_run_writes_the_contracted_files(small_run):
    out = small_run.out
    for name in ("events.jsonl", "verdict.json", "report.md", "report.html"):
        assert (out / name).is_file(), name
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["scenario"] == "small" and verdict["seed"] == 5
    for key in ("accepted", "delivered", "bounced", "discarded", "queued", "lost", "duplicates"):
        assert key in verdict["counts"]
    assert [g["id"] for g in verdict["guarantees"]] == [
        "mx-fallback", "conservation", "retry-discipline", "mx-order"]
    for g in verdict["guarantees"]:
        assert g["expected"] == "holds" and g["status"] in ("pass", "fail")
        assert {"detail", "counterexamples"} <= set(g)


def test_the_small_world_behaves(small_run):
    assert small_run.met, [(g.id, g.detail) for g in small_run.verdict.guarantees]
    assert small_run.counts.accepted > 10 and small_run.counts.lost == 0
    # mail reached the secondary while the primary was down
    taken = [e for e in small_run.events if isinstance(e, ev.MessageAccepted)
             and e.host == "mx2.example.net"]
    # (a connect that started just before the primary came back may still time out)
    assert taken and all(3600 <= e.t < 2 * 3600 + 130 for e in taken)


def test_expectations_are_logged_right_after_run_started(small_run):
    first = small_run.events[:5]
    assert isinstance(first[0], sev.RunStarted) and first[0].scenario == "small"
    assert [e.guarantee for e in first[1:]] == [
        "mx-fallback", "conservation", "retry-discipline", "mx-order"]
    assert all(e.host == "mxsim" and e.t == 0 for e in first[1:])
    assert isinstance(small_run.events[-1], sev.RunEnded)
    assert small_run.events[-1].t == 4 * 3600


def test_same_seed_same_bytes_other_seed_other_log(small_run, tmp_path):
    again = run_scenario(load_text(SMALL, "small.yaml"), out=tmp_path / "again")
    assert (again.out / "events.jsonl").read_bytes() == \
        (small_run.out / "events.jsonl").read_bytes()
    assert (again.out / "report.md").read_bytes() == (small_run.out / "report.md").read_bytes()
    other = run_scenario(load_text(SMALL, "small.yaml"), seed=6, out=tmp_path / "other")
    assert (other.out / "events.jsonl").read_bytes() != \
        (small_run.out / "events.jsonl").read_bytes()
    assert other.seed == 6 and json.loads((other.out / "verdict.json").read_text())["seed"] == 6


def test_an_unmet_expectation_is_reported_not_hidden():
    result = run_scenario(load_text(WRONG, "wrong.yaml"), write=False)
    first = result.verdict.guarantees[0]
    assert first.id == "mx-fallback" and first.expected == "violated"
    assert first.status == "pass" and not first.met and not result.met


def test_progress_is_called_with_time_and_in_flight():
    seen = []
    run_scenario(load_text(SMALL, "small.yaml"), write=False,
                 progress=lambda now, total, n: seen.append((now, total, n)))
    assert len(seen) == 200 and seen[-1][0] == seen[-1][1] == 4 * 3600
    assert [s[0] for s in seen] == sorted(s[0] for s in seen)
    assert any(n > 0 for _, _, n in seen)      # something was queued at some point


def test_feed_without_its_virus_scan_is_refused_quoting_the_service():
    feed = "  - {role: smtp-feed, host: mx2.example.net, client_domains: example.net}"
    text = SMALL.replace(
        "  - {role: secondary-mx, host: mx2.example.net, relay_domains: example.net}", feed)
    load_text(text, "feed.yaml")      # the feed's defaults run (virus on, greylisting on)
    off = text.replace(feed, feed[:-1] + ", virus_scan: false}")
    # validation refuses it, naming the key and quoting the seed ...
    with pytest.raises(ScenarioError, match=r"feed.yaml:\d+:\d+: roles\[1\]: .*virus_scan: "
                                            r".*This is not optional"):
        load_text(off, "feed.yaml")
    # ... and so does the runner, for a model that skipped the loader
    sc = Scenario.model_validate(yaml.safe_load(off))
    with pytest.raises(RunnerError, match=r"roles\[1\]: .*not optional"):
        run_scenario(sc, write=False)


def test_retry_discipline_is_told_what_the_scenario_says_each_host_runs():
    sc = load_text(SMALL.replace("rate: 8/h", "rate: 8/h, retry: {preset: exim, lifetime: 2d}"),
                   "x.yaml")
    params = planned_expectations(sc)[2].params
    hosts = params["per_host"]
    # The preset's name and the settings the scenario changes, never a schedule object.
    assert hosts["mail.example.org"] == {"preset": "exim", "settings": {"lifetime": 2 * 86400},
                                         "lifetimes": {}}
    assert hosts["mx2.example.net"] == {"preset": "postfix", "settings": {}, "lifetimes": {}}
    assert params["round_slack"] == 60
    explicit = load_text(SMALL.replace("  - guarantee: retry-discipline\n",
                                       "  - guarantee: retry-discipline\n    params: "
                                       "{per_host: {mx2.example.net: {preset: rfc5321}}}\n"))
    given = planned_expectations(explicit)[2].params["per_host"]
    assert given["mx2.example.net"] == {"preset": "rfc5321"}
    assert given["mail.example.org"]["preset"] == "postfix"


def test_schedules_become_world_schedules():
    def sched(text):
        sc = load_text(SMALL.replace("{kind: outages, outages: [{start: 1h, end: 2h}]}", text))
        return build.link_spec(sc.hosts[0]).schedule
    assert sched("always") == AlwaysUp()
    assert sched("{kind: outages, outages: [{start: 1h, end: 2h}]}") == Outages([(3600, 7200)])
    assert sched("{kind: intervals, up: [{start: 0, end: 1h}]}") == Intervals([(0, 3600)])
    assert sched("{kind: dialup, up: 15m, every: 4h, start: 1h, jitter: 5m}") == \
        DialupWindows(up=900, every=14400, offset=3600, jitter=300)
    assert sched("{kind: random, mean_up: 1h, mean_down: 2h, initially: down}") == \
        RandomOnOff(mean_up=3600, mean_down=7200, start_up=False)


def test_access_rules_become_link_rules():
    sc = load_text(SMALL.replace(
        "  - {name: mail.example.org, address: 198.51.100.25}",
        "  - {name: mail.example.org, address: 198.51.100.25,\n"
        "     access: {port25: {intercepted_by: mx2.example.net}}}\n"
        "  - {name: home.example, address: 198.51.100.26, access: {port25: blocked}}"))
    assert build.link_spec(sc.host("mail.example.org")).port25_redirect == "mx2.example.net"
    assert build.link_spec(sc.host("home.example")).port25 == "blocked"


def test_link_subscribers_hear_link_up_and_the_sink_only_records(world):
    world.add_host("h", "192.0.2.1", link=LinkSpec(schedule=Outages([(10.0, 20.0), (30.0, 40.0)])))
    calls = []
    world.on_link_up("h", lambda: calls.append(world.now()))
    world.run(until=50)
    assert calls == [20.0, 40.0]
    # the callback ran right after the LinkUp it follows was logged
    ups = [e.t for e in world.events if isinstance(e, sev.LinkUp)]
    assert ups == calls and type(world.sink) is MemorySink


def _strictly_equal(a, b) -> bool:
    """Equal values of the same types all the way down, dicts in the same key order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_strictly_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_strictly_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, ev.Event):
        return all(_strictly_equal(getattr(a, f), getattr(b, f)) for f in a.__dataclass_fields__)
    return a == b


def test_the_log_in_memory_is_exactly_the_file_it_was_streamed_to(small_run):
    """The run judges the events it holds, not the file read back: they must
    be what the file's lines decode to, type for type and key for key."""
    from sim.evidence.log import read_jsonl
    back = read_jsonl(small_run.out / "events.jsonl")
    assert len(back) == len(small_run.events)
    bad = [(a, b) for a, b in zip(small_run.events, back) if not _strictly_equal(a, b)]
    assert not bad, bad[:3]


def test_a_run_that_fails_midway_keeps_the_log_it_streamed(tmp_path, monkeypatch):
    from mta.delivery.client import Deliverer
    from sim.evidence.log import read_jsonl

    async def broken(self, **kw):
        raise RuntimeError("planted failure in delivery")

    monkeypatch.setattr(Deliverer, "deliver", broken)
    with pytest.raises(RunnerError, match="component code failed.*the log so far is in"):
        run_scenario(load_text(SMALL, "small.yaml"), out=tmp_path / "broken")
    log = read_jsonl(tmp_path / "broken" / "events.jsonl")     # whole lines only
    assert isinstance(log[0], sev.RunStarted)
    assert [e.kind for e in log].count("component_error") == 1
    assert any(isinstance(e, ev.MessageSubmitted) for e in log)   # the run got going
    assert not any(isinstance(e, sev.RunEnded) for e in log)


def test_a_run_that_cannot_be_wired_leaves_no_log(tmp_path, monkeypatch):
    import sim.runner
    from sim.wiring import WiringError

    def refuse(world, sc):
        raise WiringError("planted: no such component")

    monkeypatch.setattr(sim.runner, "wire", refuse)
    with pytest.raises(RunnerError, match="planted"):
        run_scenario(load_text(SMALL, "small.yaml"), out=tmp_path / "unwired")
    assert not (tmp_path / "unwired" / "events.jsonl").exists()
