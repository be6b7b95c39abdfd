"""notebooks/queue-timeouts.ipynb: stored clean, and runs top to bottom, on a run and on a sweep.

No Jupyter here: the notebook is read as the nbformat 4 JSON it is, and its
code cells are executed in order in one namespace, with the parameter cell's
run directory pointed at a fresh temporary folder (so the notebook runs the
flagship scenario itself, as it does when ``reports/`` is empty).  The
numbers it computes are then checked against the raw ``events.jsonl``
(parsed here line by line, not through the evidence layer) and against the
retry presets' documented lifetimes.

The sweep part is executed in a real Jupyter kernel on a small sweep the
test runs first (``mxsim sweep --keep-runs``), and its per-run figures are
checked against the Parquet dataset and the kept runs' raw logs.

Executing the notebook runs the scenario four times (the flagship and three
what-ifs, about 12 s of CPU, more on a busy machine), so those tests are
marked slow; the checks on the stored file are fast.
"""
from __future__ import annotations

import io
import json
import os
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "queue-timeouts.ipynb"
HOUR = 3600.0
DAY = 24 * HOUR
QUEUE_HOST = "queue.isp.example"
SENDERS = ("mta.postfix.example", "mta.exim.example")
TERMINAL_KINDS = ("relayed", "delivered_to_mailbox", "bounced", "discarded")


def notebook() -> dict:
    return json.loads(NOTEBOOK.read_text(encoding="utf-8"))


def code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def raw_log(path: Path) -> list[dict]:
    """The log as plain JSON objects, independent of sim.evidence."""
    return [json.loads(line) for line in path.read_text(encoding="ascii").splitlines()]


# --------------------------------------------------------------------------
# The file itself
# --------------------------------------------------------------------------

def test_notebook_is_nbformat4_with_no_outputs_stored():
    text = NOTEBOOK.read_text(encoding="utf-8")
    nb = json.loads(text)
    assert nb["nbformat"] == 4 and nb["nbformat_minor"] >= 5
    assert nb["metadata"]["kernelspec"]["language"] == "python"
    ids = [c["id"] for c in nb["cells"]]
    assert len(ids) == len(set(ids)), "cell ids must be unique (nbformat 4.5)"
    cells = code_cells(nb)
    assert len(cells) >= 8
    for cell in cells:
        assert cell["outputs"] == [], f"cell {cell['id']} has stored outputs"
        assert cell["execution_count"] is None, f"cell {cell['id']} has an execution count"
        compile(source(cell), cell["id"], "exec")      # each cell is valid Python
    for cell in nb["cells"]:
        assert cell["cell_type"] in ("code", "markdown")
        if cell["cell_type"] == "markdown":
            assert "outputs" not in cell and source(cell).strip()
    # Stable in git: the file is exactly the canonical dump of its content.
    assert text == json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def test_parameter_cell_is_first_and_holds_only_settings():
    first = code_cells(notebook())[0]
    assert "parameters" in first["metadata"].get("tags", [])
    ns: dict = {}
    exec(compile(source(first), "parameters", "exec"), ns)
    assert (ROOT / ns["SCENARIO"]).is_file()
    assert ns["RUN_DIR"] == "reports/queueing-server-etrn"
    assert ns["WHAT_IF_DIR"] is None and ns["QUEUE_HOST"] is None and ns["LIFETIMES"] == {}
    assert ns["SWEEP_DIR"] is None                      # a single run unless a sweep is named
    assert ns["WHAT_IFS"], "the what-if cell needs at least one change"
    assert not [k for k in ns if not k.startswith("__") and not k.isupper()], \
        "the parameter cell should define settings only"


# --------------------------------------------------------------------------
# Executing it
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Execute every code cell in order, the run directory pointed at a tmp folder."""
    tmp = tmp_path_factory.mktemp("notebook")
    run_dir, what_if_dir = tmp / "run", tmp / "what-if"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MPLBACKEND", "Agg")
        import matplotlib
        matplotlib.use("Agg")            # in case pyplot was imported before the env var
        import matplotlib.pyplot as plt
        ns: dict = {"__name__": "__notebook__"}
        for i, cell in enumerate(code_cells(notebook())):
            exec(compile(source(cell), f"{NOTEBOOK.name}[{cell['id']}]", "exec"), ns)
            if i == 0:                   # override the parameters, as papermill would
                ns["RUN_DIR"] = str(run_dir)
                ns["WHAT_IF_DIR"] = str(what_if_dir)
        yield ns, run_dir, what_if_dir
        plt.close("all")


def stays_from_raw(events: list[dict]) -> dict[str, list[float]]:
    """Per host, the time in queue of every recipient copy (queued -> first fate)."""
    entered: dict[tuple, float] = {}
    left: dict[tuple, float] = {}
    for e in events:
        if e["kind"] == "queued":
            entered.setdefault((e["host"], e["msg"], e["rcpt"]), e["t"])
        elif e["kind"] in TERMINAL_KINDS:
            left.setdefault((e["host"], e["msg"], e["rcpt"]), e["t"])
    out: dict[str, list[float]] = defaultdict(list)
    for k, t in entered.items():
        out[k[0]].append(left[k] - t)
    return out


@pytest.mark.slow
def test_notebook_runs_the_flagship_when_the_log_is_missing(run):
    ns, run_dir, _ = run
    for name in ("events.jsonl", "verdict.json", "report.md", "events.parquet"):
        assert (run_dir / name).is_file(), name
    lines = (run_dir / "events.jsonl").read_text(encoding="ascii").splitlines()
    assert len(ns["events"]) == len(ns["frame"]) == len(lines)
    assert ns["scenario"].name == "queueing-server-etrn"
    verdict = json.loads((run_dir / "verdict.json").read_text())
    assert all(g["met"] for g in verdict["guarantees"])


@pytest.mark.slow
def test_time_in_queue_agrees_with_the_raw_log(run):
    ns, run_dir, _ = run
    raw = stays_from_raw(raw_log(run_dir / "events.jsonl"))
    stays = ns["stays"]
    assert sorted(raw) == sorted(stays["host"].unique()) == sorted([QUEUE_HOST, *SENDERS])
    for host, values in raw.items():
        mine = stays[stays["host"] == host]["in_queue"]
        assert len(mine) == len(values)
        assert mine.max() == pytest.approx(max(values))
        assert mine.sum() == pytest.approx(sum(values))
    assert not stays["still_queued"].any()
    # Senders hand mail over at once; the queueing server holds it until the
    # next dial-in: at most one period plus jitter plus the window (6h, 10m, 20m).
    for host in SENDERS:
        assert max(raw[host]) < 60
    assert HOUR < max(raw[QUEUE_HOST]) < 6 * HOUR + 10 * 60 + 20 * 60


@pytest.mark.slow
def test_margins_use_each_hosts_preset_lifetime(run):
    from mta.retry.presets import preset

    ns, run_dir, _ = run
    raw = stays_from_raw(raw_log(run_dir / "events.jsonl"))
    postfix, exim = preset("postfix").lifetime, preset("exim").lifetime
    assert (postfix, exim) == (5 * DAY, 4 * DAY)    # maximal_queue_lifetime; Exim F,4d
    life = {QUEUE_HOST: postfix, "mta.postfix.example": postfix, "mta.exim.example": exim}

    margins = ns["margins"]
    assert not margins.empty and set(margins.index) == set(life)
    for host, lifetime in life.items():
        assert margins.loc[host, "lifetime_h"] == pytest.approx(lifetime / HOUR)
        assert margins.loc[host, "min_margin_h"] == pytest.approx(
            (lifetime - max(raw[host])) / HOUR, abs=1e-3)
        assert margins.loc[host, "bounced"] == 0
    expected_min = min(life[h] - max(v) for h, v in raw.items())
    assert ns["MIN_MARGIN"] == pytest.approx(expected_min)
    assert ns["MIN_MARGIN"] > 0                           # the flagship never came near bouncing
    assert ns["queue_host"] == QUEUE_HOST
    assert ns["QUEUE_MIN_MARGIN"] == pytest.approx(postfix - max(raw[QUEUE_HOST]))
    assert ns["closest"]["in_queue"] == pytest.approx(max(raw[QUEUE_HOST]))


@pytest.mark.slow
def test_deferrals_retry_gaps_and_releases(run):
    ns, run_dir, _ = run
    events = raw_log(run_dir / "events.jsonl")
    retries, releases = ns["retries"], ns["releases"]
    assert set(retries.index) == {QUEUE_HOST, *SENDERS}
    deferred = defaultdict(int)
    for e in events:
        if e["kind"] == "deferred":
            deferred[e["host"]] += 1
    for host in retries.index:
        assert retries.loc[host, "deferrals"] == deferred[host]
        # With no deferral each copy is tried exactly once, so there is no gap.
        if not deferred[host]:
            assert retries.loc[host, "attempts"] == retries.loc[host, "copies"]
            assert retries.loc[host, "gaps"] == 0
    etrn_ok = [e["t"] for e in events if e["kind"] == "etrn_request"
               and 200 <= e["code"] < 300]   # RFC 1985: 250-253
    released = [e["t"] for e in events if e["kind"] == "released"]
    assert len(etrn_ok) == len(released) == releases.loc[QUEUE_HOST, "releases"] > 0
    gaps = [b - a for a, b in zip(released, released[1:])]
    assert releases.loc[QUEUE_HOST, "max_gap_h"] == pytest.approx(max(gaps) / HOUR)
    assert max(gaps) <= 6 * HOUR + 10 * 60          # every 6h, jitter up to 10m


@pytest.mark.slow
def test_queue_depth_plot_shows_every_link_down_period(run):
    ns, run_dir, _ = run
    events = raw_log(run_dir / "events.jsonl")
    changes = [e for e in events if e["kind"] in ("link_up", "link_down")]
    down_starts = sum(e["kind"] == "link_down" for e in changes) + \
        (changes[0]["kind"] == "link_up")               # down before its first "up"
    assert len(ns["down"]) == down_starts > 0
    fig = ns["fig_depth"]
    ax = fig.axes[0]
    assert len(ax.patches) == down_starts               # one shaded band per period
    assert {line.get_label() for line in ax.get_lines()} == {QUEUE_HOST, *SENDERS}
    depth = ns["depth_frame"]
    assert depth[depth["host"] == QUEUE_HOST]["depth"].max() > 1
    png = io.BytesIO()
    fig.savefig(png, format="png")                      # renders without a display
    assert png.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_what_if_runs_have_smaller_margins(run):
    ns, _, what_if_dir = run
    cmp = ns["comparison"]
    assert list(cmp.index) == ["as run", *ns["WHAT_IFS"]]
    base = cmp.loc["as run"]
    assert base["bounced"] == 0 and base["expectations met"]
    for name in ns["WHAT_IFS"]:
        assert cmp.loc[name, "min_margin_h"] < base["min_margin_h"], name
    # A shorter lifetime leaves the timeline alone until something expires.
    short = cmp.loc["lifetime 8h"]
    assert short["lifetime_h"] == 8
    assert short["max_in_queue_h"] == pytest.approx(base["max_in_queue_h"])
    assert short["min_margin_h"] == pytest.approx(8 - base["max_in_queue_h"])
    assert short["min_margin_h"] > 0 and short["bounced"] == 0
    # A sparser dial-up makes mail wait longer on the queueing server.
    assert cmp.loc["dial-up every 12h", "max_in_queue_h"] > 1.5 * base["max_in_queue_h"]
    # Below one dial-up period, held mail expires: bounced, expectations not met.
    expired = cmp.loc["lifetime 5h"]
    assert expired["min_margin_h"] <= 1e-9 and expired["bounced"] > 0
    assert not expired["expectations met"] and expired["delivered"] < base["delivered"]
    logs = sorted(what_if_dir.glob("*/events.jsonl"))
    assert len(logs) == len(ns["WHAT_IFS"])
    bounced = {p.parent.name: sum(e["kind"] == "bounced" for e in raw_log(p)) for p in logs}
    assert bounced == {"lifetime-8h": 0, "dial-up-every-12h": 0,
                       "lifetime-5h": int(expired["bounced"])}


@pytest.mark.slow
def test_what_if_scenario_edits_only_what_it_names(run):
    from sim.convert import host_retry
    from sim.scenario.loader import ScenarioError

    ns, _, _ = run
    sc = ns["scenario"]
    assert ns["what_if_scenario"](sc) == sc             # no change: the same scenario
    variant = ns["what_if_scenario"](sc, lifetime="8h")
    before, after = host_retry(sc), host_retry(variant)
    assert after[QUEUE_HOST][0].lifetime == 8 * HOUR
    for host in SENDERS:
        assert after[host][0] == before[host][0]
    with pytest.raises(ScenarioError, match="every"):
        ns["what_if_scenario"](sc, dialup_every="10m")  # shorter than its 20m window


@pytest.mark.slow
def test_refuses_a_log_of_another_scenario(run, tmp_path):
    from sim.events import RunStarted
    from sim.evidence.log import write_jsonl

    ns, _, _ = run
    write_jsonl([RunStarted(t=0.0, host="world", scenario="mx-fallback", seed=1)],
                tmp_path / "events.jsonl")
    load = next(c for c in code_cells(notebook()) if c["id"] == "load")
    other = dict(ns, run_dir=tmp_path)
    with pytest.raises(ValueError, match="mx-fallback"):
        exec(compile(source(load), "load", "exec"), other)


@pytest.mark.slow
def test_notebook_does_not_assume_its_working_directory(run):
    ns, _, _ = run
    assert ns["ROOT"] == ROOT
    assert os.path.isabs(ns["scenario_path"]) and ns["scenario_path"].is_file()


# --------------------------------------------------------------------------
# In a real Jupyter kernel
# --------------------------------------------------------------------------

@pytest.mark.slow
def test_notebook_runs_to_the_end_in_a_real_jupyter_kernel(tmp_path):
    """What `jupyter nbconvert --execute` does: a real ipykernel, which runs
    every cell inside its own asyncio loop.  A simulated run once left that
    loop cleared, and the cell after the what-if reruns hung until the cell
    timeout; here every cell must finish, with outputs and no error."""
    import nbclient
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = nbformat.v4.new_code_cell(
        f"RUN_DIR = {str(tmp_path / 'run')!r}\nWHAT_IF_DIR = {str(tmp_path / 'what-if')!r}")
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(index + 1, params)      # papermill's injected-parameters cell
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=300,
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code)
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert errors == []
    # the last cell, after the what-if reruns, ran and printed its table
    assert code[-1].outputs, "the last cell produced nothing"
    assert (tmp_path / "run" / "events.jsonl").is_file()


SWEEP_KEYS = ("hosts[1].link.schedule.every", "roles[0].retry.lifetime")


@pytest.mark.slow
def test_notebook_reads_a_sweep_in_a_real_jupyter_kernel(tmp_path):
    """A 12-run sweep (the flagship, shortened: dial-up every 4h, 8h or 12h
    against a queue lifetime of 8h or 5d, two seeds), read by the notebook
    in a real kernel: its bounced fractions agree with the dataset, its
    margins with the kept runs' raw logs, and it shows one plot per setting."""
    import nbclient
    import nbformat

    from sim.cli import main
    from sim.sweep import dataset

    text = (ROOT / "scenarios" / "queueing-server-etrn.yaml").read_text()
    short = tmp_path / "queueing-server-etrn.yaml"
    short.write_text(text.replace("duration: 3d", "duration: 2d").replace("stop: 60h", "stop: 24h"))
    sweep_dir = tmp_path / "sweep"
    assert main(["sweep", str(short), "--vary", f"{SWEEP_KEYS[0]}=4h,8h,12h",
                 "--vary", f"{SWEEP_KEYS[1]}=8h,5d", "--seeds", "1-2", "--keep-runs",
                 "--workers", "2", "--out", str(sweep_dir)]) == 0

    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = nbformat.v4.new_code_cell(
        f"RUN_DIR = {str(tmp_path / 'run')!r}\nWHAT_IF_DIR = {str(tmp_path / 'what-if')!r}\n"
        f"SWEEP_DIR = {str(sweep_dir)!r}")
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(index + 1, params)
    # Asks the kernel, after the notebook's own cells, what it computed.
    nb.cells.append(nbformat.v4.new_code_cell(
        "print(sweep_runs[['run_id', 'bounced_fraction', 'max_in_queue', 'min_margin']]"
        ".to_json(orient='records'))"))
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=600,
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [o for c in code for o in c.outputs if o.output_type == "error"] == []
    plot = next(c for c in code if c.get("id") == "sweep-plot")
    assert [o.output_type for o in plot.outputs if "image/png" in o.get("data", {})] == \
        ["display_data"] * len(SWEEP_KEYS)
    assert "bounced in 2 of 12 runs, silently lost 0" in "".join(
        o.get("text", "") for o in plot.outputs)
    computed = {r["run_id"]: r for r in json.loads(code[-1].outputs[0]["text"])}

    runs = dataset.read(sweep_dir).drop_duplicates("run_id").set_index("run_id")
    assert sorted(computed) == sorted(runs.index) and len(runs) == 12
    for run_id, row in runs.iterrows():
        mine = computed[run_id]
        assert mine["bounced_fraction"] == pytest.approx(row["bounced"] / row["accepted"])
        stays = stays_from_raw(raw_log(sweep_dir / "runs" / run_id / "events.jsonl"))
        lifetime = row[SWEEP_KEYS[1]]
        assert mine["max_in_queue"] == pytest.approx(max(stays[QUEUE_HOST]))
        assert mine["min_margin"] == pytest.approx(lifetime - max(stays[QUEUE_HOST]), abs=1e-6)
        # Mail held longer than the lifetime bounces; a lifetime of days never comes near.
        if lifetime == 5 * DAY:
            assert row["bounced"] == 0 and mine["min_margin"] > 4 * DAY
        if row[SWEEP_KEYS[0]] == 12 * HOUR and lifetime == 8 * HOUR:
            assert row["bounced"] > 0 and mine["min_margin"] <= 1e-6
