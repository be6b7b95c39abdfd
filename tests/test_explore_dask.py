"""``mxsim explore`` on Dask: the same minimal world on 1 worker or 2, answers
read in the candidates' order whatever finishes first, an existing cluster
by address, and an unreachable scheduler refused before any run."""
from __future__ import annotations

import pytest

from sim.cli import main
from sim.explore.search import draws, shrink_candidates
from sim.explore.worlds import Worlds
from sim.sweep.run import connect
from helpers.scenarios import LOSSY, write

# LOSSY's relay keeps 2 recipients per message; the block lets the sender
# send up to 6 messages to up to 8 recipients, at one of three rates.
EXPLORED = LOSSY + """explore:
  - key: traffic[0].recipients
    range: {from: 1, to: 8}
  - key: traffic[0].count
    range: {from: 1, to: 6}
  - key: traffic[0].rate
    choices: [1/20m, 1/5m, 1/m]
"""


def test_the_same_minimal_world_on_one_worker_or_two(tmp_path, capsys):
    path = write(tmp_path, "lossy", EXPLORED)
    texts = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        assert main(["explore", str(path), "--guarantee", "conservation", "--seed", "11",
                     "--workers", str(workers), "--out", str(out)]) == 1
        texts[workers] = (out / "minimal.yaml").read_text().replace(str(out), "OUT")
    assert texts[1] == texts[2]
    assert "#   traffic[0].recipients = 3" in texts[1]          # one above the limit
    assert "#   traffic[0].count = 1" in texts[1] and "#   traffic[0].rate = 1/20m" in texts[1]
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split(";")[0] == printed[4].split(";")[0]   # the same world count


def test_answers_come_in_the_candidates_order_not_the_finishing_order():
    slow = LOSSY.replace("count: 2", "count: 60").replace("rate: 1/20m", "rate: 1/m")
    passing = LOSSY.replace("recipients: 3", "recipients: 2")
    client, cluster = connect(None, 2)
    try:
        worlds = Worlds(client, "conservation", "lossy.yaml")
        # Both fail; the quick second one finishes first, the answer is still the first.
        assert worlds.first_failing([slow, LOSSY]) == 0
        assert worlds.worlds == 1
        assert [o.status for o in worlds.every([passing, LOSSY, "name: [", None])] == \
            ["pass", "fail", "invalid", "invalid"]
        assert worlds.refused == 1 and worlds.worlds == 4
        assert worlds.first_failing([passing]) is None
    finally:
        client.close()
        cluster.close()


def test_draws_and_shrink_rounds_are_fixed_by_the_seed():
    assert list(draws([3, 4], 5, seed=1)) == list(draws([3, 4], 5, seed=1))
    assert list(draws([3, 4], 5, seed=1))[0] == (0, 0)
    assert len(set(draws([3, 4], 12, seed=2))) == 12            # every combination, once
    big = list(draws([100, 100, 100], 50, seed=3))
    assert len(set(big)) == 50 and big != list(draws([100, 100, 100], 50, seed=4))
    assert shrink_candidates((8, 0, 1)) == [(0, 0, 1), (2, 0, 1), (4, 0, 1), (6, 0, 1),
                                            (7, 0, 1), (8, 0, 0)]


def test_an_existing_cluster_is_used_by_address(tmp_path, capsys):
    from dask.distributed import LocalCluster

    path = write(tmp_path, "lossy", EXPLORED)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                      scheduler_kwargs={"dashboard_address": ":0"}) as cluster:
        assert main(["explore", str(path), "--guarantee", "conservation", "--budget", "3",
                     "--scheduler", cluster.scheduler_address,
                     "--out", str(tmp_path / "o")]) == 1
        assert cluster.scheduler.status.name == "running"
    assert (tmp_path / "o" / "minimal.yaml").exists()


@pytest.mark.parametrize("extra, message", [
    (["--scheduler", "tcp://127.0.0.1:9"], "cannot reach a Dask scheduler"),
    (["--workers", "0"], "--workers 0"),
])
def test_bad_cluster_arguments_exit_2_before_any_run(tmp_path, capsys, monkeypatch,
                                                     extra, message):
    import sim.sweep.run as sweep_run
    monkeypatch.setattr(sweep_run, "CONNECT_TIMEOUT", "1s")
    path = write(tmp_path, "lossy", EXPLORED)
    out = tmp_path / "o"
    assert main(["explore", str(path), "--guarantee", "conservation", *extra,
                 "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
