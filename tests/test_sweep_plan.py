"""The sweep's plan and its validation: pure, no world runs."""
from __future__ import annotations

import pytest

from sim.cli import main
from sim.sweep.plan import (PlanError, Point, expand, parse_path, parse_seeds, parse_vary,
                            variant_data)
from sim.sweep.variants import SweepInputError, prepare
from helpers.scenarios import SMALL, write


def test_key_paths_follow_the_file():
    assert parse_path("hosts[1].link.schedule.outages[0].for") == \
        ("hosts", 1, "link", "schedule", "outages", 0, "for")
    assert parse_path("roles[0].retry.lifetime") == ("roles", 0, "retry", "lifetime")
    for bad in ("[0].x", "a..b", "a[x]", "a[0]b", "a.", ""):
        with pytest.raises(PlanError):
            parse_path(bad)


def test_values_lists_and_ranges():
    v = parse_vary("roles[0].retry.lifetime=1d,2d,3d")
    assert v.values == ("1d", "2d", "3d") and v.numeric and v.durations
    assert [v.column_value(x) for x in v.values] == [86400.0, 172800.0, 259200.0]
    r = parse_vary("x=12h..72h/12h")
    assert r.values == ("12h", "1d", "1d12h", "2d", "2d12h", "3d")
    assert parse_vary("x=1..7/3").values == (1, 4, 7)
    assert parse_vary("x=0.5..1.5/0.5").values == (0.5, 1, 1.5)
    p = parse_vary("traffic[0].retry=postfix,exim")
    assert p.values == ("postfix", "exim") and not p.numeric
    assert p.column_value("exim") == "exim"
    assert parse_vary("x=[1, 2],[3]").values == ([1, 2], [3])


@pytest.mark.parametrize("spec", ["x", "=1", "x=", "x=1,,2", "x=1,1", "x=3..1/1", "x=1..3/0",
                                  "x=a..b/1", "x=0..1000000/1"])
def test_bad_vary_specs_are_named(spec):
    with pytest.raises(PlanError, match="--vary"):
        parse_vary(spec)


def test_seeds():
    assert parse_seeds("1-3") == (1, 2, 3)
    assert parse_seeds("7") == (7,)
    assert parse_seeds("1-2,9") == (1, 2, 9)
    for bad in ("3-1", "a", "1-2,2", ""):
        with pytest.raises(PlanError, match="--seeds"):
            parse_seeds(bad)


def test_expansion_order_and_stable_run_ids():
    a, b = parse_vary("a=1,2"), parse_vary("b=x,y")
    points = expand([a, b], (5, 6))
    assert [(p.values, p.seed) for p in points[:3]] == [((1, "x"), 5), ((1, "x"), 6),
                                                       ((1, "y"), 5)]
    assert len(points) == 8 and len({p.run_id for p in points}) == 8
    assert Point((1, "x"), 5).run_id == points[0].run_id     # names survive a new plan


def test_variant_data_adds_missing_keys_and_leaves_the_base_alone():
    data = {"hosts": [{"name": "h", "link": {"latency": 1}}]}
    out = variant_data(data, [parse_vary("hosts[0].link.bandwidth=56kbit"),
                              parse_vary("hosts[0].access.port25=blocked")],
                       ("56kbit", "blocked"))
    assert out["hosts"][0]["link"] == {"latency": 1, "bandwidth": "56kbit"}
    assert out["hosts"][0]["access"] == {"port25": "blocked"}
    assert data == {"hosts": [{"name": "h", "link": {"latency": 1}}]}


def test_every_variant_is_validated_before_any_run(tmp_path):
    path = str(write(tmp_path, "small", SMALL))
    sweep = prepare(path, ["hosts[0].link.schedule.outages[0].end=2h,3h",
                           "traffic[0].rate=4/h,8/h"], "1-2")
    assert len(sweep.points()) == 8 and len(sweep.variant_texts) == 4
    assert "rate: 4/h" in sweep.scenario_text(sweep.points()[0])
    cases = {
        "hosts[0].link.schedule.outages[3].end=2h": "has 1 item, so there is no [3]",
        "traffic[0].rat=4/h": "unknown key (did you mean 'rate'?)",
        "traffic[0].rate=often,4/h": "traffic[0].rate=often: traffic[0].rate:",
        "hosts[0].link.schedule.outages[0].end=30m": "hosts[0].link.schedule.outages[0]",
        "hosts[0].name.first=x": "is 'mx1.example.net', not a mapping",
    }
    for spec, message in cases.items():
        with pytest.raises(SweepInputError) as err:
            prepare(path, [spec], None)
        assert message in str(err.value), (spec, str(err.value))


def test_bad_input_exits_2_before_any_run(tmp_path, capsys):
    path = str(write(tmp_path, "small", SMALL))
    out = tmp_path / "sweep"
    assert main(["sweep", path, "--vary", "traffic[0].rat=4/h", "--out", str(out)]) == 2
    assert "did you mean 'rate'" in capsys.readouterr().err
    assert main(["sweep", path, "--seeds", "2-1", "--out", str(out)]) == 2
    assert main(["sweep", path, "--workers", "0", "--out", str(out)]) == 2
    assert main(["sweep", path]) == 2
    assert main(["sweep", "--resume", str(tmp_path)]) == 2
    assert "no sweep.json" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["sweep", path, "--out", str(tmp_path / "file")]) == 2
    assert not out.exists()


def test_an_unreachable_scheduler_exits_2_before_any_run(tmp_path, capsys, monkeypatch):
    import sim.sweep.run as sweep_run
    monkeypatch.setattr(sweep_run, "CONNECT_TIMEOUT", "1s")
    path = str(write(tmp_path, "small", SMALL))
    out = tmp_path / "sweep"
    assert main(["sweep", path, "--scheduler", "tcp://127.0.0.1:9", "--out", str(out)]) == 2
    assert "cannot reach a Dask scheduler" in capsys.readouterr().err
    assert not (out / "sweep.json").exists()


def test_tasks_shrink_to_single_runs_and_cover_every_run_once():
    from sim.sweep.run import MAX_CHUNK, TASKS_PER_WORKER, chunk_sizes

    sizes = chunk_sizes(100, 2)
    assert sum(sizes) == 100 and sizes == sorted(sizes, reverse=True)
    assert sizes[0] == min(MAX_CHUNK, 100 // (2 * TASKS_PER_WORKER))
    assert sizes[-2:] == [1, 1] and max(chunk_sizes(100_000, 2)) == MAX_CHUNK
    assert chunk_sizes(4, 2) == [1, 1, 1, 1]
    assert chunk_sizes(0, 2) == [] and sum(chunk_sizes(10, 0)) == 10
