"""``mxsim sweep`` end to end on a real Dask LocalCluster (two worker processes).

One tiny sweep (the SMALL world, 2 settings x 2 seeds = 4 runs) is run
once for the module; the tests check its dataset against worlds run
directly, its report, its kept runs, and that a rerun skips what is done.
"""
from __future__ import annotations

import shutil

import pyarrow.parquet as pq
import pytest

from sim.cli import main
from sim.evidence.lifecycle import Counts
from sim.pipeline import load_string, run_scenario
from sim.sweep import dataset
from helpers.scenarios import SMALL, write

KEY = "hosts[0].link.schedule.outages[0].end"


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    path = write(root, "small", SMALL)
    out = root / "out"
    code = main(["sweep", str(path), "--vary", f"{KEY}=90m,3h", "--seeds", "1-2",
                 "--workers", "2", "--keep-runs", "--out", str(out)])
    return path, out, code


def test_the_dataset_has_a_row_per_run_and_guarantee(swept):
    _, out, code = swept
    assert code == 0
    frame = dataset.read(out)
    assert len(list((out / "dataset").glob("part-*.parquet"))) == 4
    expected = [e.guarantee for e in load_string(SMALL).expectations]
    assert frame["run_id"].nunique() == 4 and len(frame) == 4 * len(expected)
    assert sorted(frame[KEY].unique()) == [5400.0, 10800.0]
    assert sorted(frame["seed"].unique()) == [1, 2]
    assert list(frame.columns[:4]) == ["run_id", "scenario", "seed", KEY]
    assert set(Counts.keys()) <= set(frame.columns)
    assert set(frame["guarantee"]) == set(expected)
    assert frame["error"].isna().all()
    # Every part has the same schema, so any Parquet reader takes the folder whole.
    assert pq.read_table(out / "dataset").num_rows == len(frame)


def test_rows_agree_with_the_same_world_run_directly(swept):
    _, out, _ = swept
    frame = dataset.read(out)
    row = frame[(frame[KEY] == 10800.0) & (frame["seed"] == 2)]
    text = SMALL.replace("{start: 1h, end: 2h}", "{start: 1h, end: 3h}")
    direct = run_scenario(load_string(text), seed=2, write=False)
    assert {k: int(row[k].iloc[0]) for k in Counts.keys()} == direct.verdict.counts.to_dict()
    assert list(row["guarantee"]) == [g.id for g in direct.verdict.guarantees]
    assert list(row["met"]) == [g.met for g in direct.verdict.guarantees]
    assert list(row["evidence"]) == [g.judged for g in direct.verdict.guarantees]
    assert row["evidence"].notna().all() and row["evidence_unit"].notna().all()
    assert int(row["events"].iloc[0]) == len(direct.events)


def test_kept_runs_reproduce_with_mxsim_run(swept, tmp_path):
    _, out, _ = swept
    run_id = dataset.read(out)["run_id"].iloc[0]
    kept = out / "runs" / run_id
    header = (kept / "scenario.yaml").read_text().splitlines()[0]
    seed = int(header.rsplit("--seed ", 1)[1])
    assert main(["run", str(kept / "scenario.yaml"), "--seed", str(seed),
                 "--out", str(tmp_path / "again")]) in (0, 1)
    assert (tmp_path / "again" / "events.jsonl").read_bytes() == \
        (kept / "events.jsonl").read_bytes()


def test_the_report_plots_loss_and_bounces_per_setting(swept):
    _, out, _ = swept
    page = (out / "index.html").read_text()
    assert "4 of 4 runs" in page
    for count in ("lost", "bounced"):
        png = out / f"hosts-0--link-schedule-outages-0--end-{count}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.name in page
    assert "<td>conservation</td>" in page


def test_a_rerun_skips_finished_runs_and_redoes_only_missing_ones(swept, tmp_path, capsys):
    path, out, _ = swept
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    capsys.readouterr()
    assert main(["sweep", "--resume", str(copy)]) == 0
    assert "(0 run now, 4 already done" in capsys.readouterr().out
    parts = sorted((copy / "dataset").glob("part-*.parquet"))
    before = parts[0].read_bytes()
    parts[0].unlink()
    (copy / "dataset" / f".{parts[0].name}.tmp").write_bytes(b"half a file")
    assert main(["sweep", str(path), "--vary", f"{KEY}=90m,3h", "--seeds", "1-2",
                 "--workers", "1", "--out", str(copy)]) == 0
    assert "(1 run now, 3 already done" in capsys.readouterr().out
    assert parts[0].read_bytes() == before
    # Another plan's keys in the same folder: refused before anything runs.
    assert main(["sweep", str(path), "--vary", "traffic[0].rate=4/h", "--out", str(copy)]) == 2


def test_an_existing_cluster_is_used_by_address(tmp_path, capsys):
    from dask.distributed import LocalCluster

    path = write(tmp_path, "small", SMALL)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                      scheduler_kwargs={"dashboard_address": ":0"}) as cluster:
        assert main(["sweep", str(path), "--seeds", "4", "--scheduler",
                     cluster.scheduler_address, "--out", str(tmp_path / "out")]) == 0
        # The cluster is the caller's: still up after the sweep.
        assert cluster.scheduler.status.name == "running"
    assert "1 run (1 run now" in capsys.readouterr().out
    assert dataset.read(tmp_path / "out")["seed"].unique().tolist() == [4]


def test_an_interrupted_sweep_keeps_what_finished_and_resumes(tmp_path):
    from sim.sweep.run import connect, pending, run_sweep
    from sim.sweep.variants import prepare

    path = write(tmp_path, "small", SMALL)
    sweep = prepare(str(path), [f"{KEY}=90m,3h"], "1")
    out = tmp_path / "out"
    dataset.write_manifest(out, sweep.manifest())

    def stop(*_):
        raise KeyboardInterrupt

    client, cluster = connect(None, 1)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_sweep(sweep, out, client=client, on_done=stop)
    finally:
        client.close()
        cluster.close()
    assert len(dataset.done_runs(out)) == 1 and len(pending(sweep, out)) == 1
    assert main(["sweep", "--resume", str(out), "--workers", "1"]) == 0
    assert dataset.read(out)["run_id"].nunique() == 2


def test_runs_grouped_into_one_task_give_the_same_dataset(swept, tmp_path, monkeypatch):
    import sim.sweep.run as sweep_run

    path, out, _ = swept
    monkeypatch.setattr(sweep_run, "TASKS_PER_WORKER", 1)      # all 4 runs in one task
    assert sweep_run.chunk_sizes(4, 1) == [4]
    grouped = tmp_path / "grouped"
    assert main(["sweep", str(path), "--vary", f"{KEY}=90m,3h", "--seeds", "1-2",
                 "--workers", "1", "--out", str(grouped)]) == 0
    assert dataset.read(grouped).equals(dataset.read(out))
