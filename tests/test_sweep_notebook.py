"""notebooks/loss-vs-outage.ipynb: stored clean, and (slow) runs in a real
Jupyter kernel, running its sweep on a Dask LocalCluster from the kernel."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.sweep import dataset
from sim.sweep.report import per_run

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "loss-vs-outage.ipynb"
DAY = 86400.0


def test_stored_without_outputs_and_with_a_parameters_cell():
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4 and nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    assert "parameters" in code[0]["metadata"]["tags"]
    assert len({c["id"] for c in nb["cells"]}) == len(nb["cells"])


@pytest.mark.slow
def test_the_notebook_runs_its_sweep_in_a_real_kernel(tmp_path):
    import nbclient
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    out = tmp_path / "sweep"
    params = nbformat.v4.new_code_cell(
        f"SWEEP_DIR = {str(out)!r}\nOUTAGES = '1d..5d/2d'\nPRESETS = 'postfix,exim'\n"
        f"LIFETIMES = '2d,5d'\nSEEDS = '1'\nWORKERS = 2")
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(index + 1, params)
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=600,
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [o for c in code for o in c.outputs if o.output_type == "error"] == []
    # the plot, once, also under MPLBACKEND=Agg (CI), which turns the inline backend off
    assert [o.output_type for o in code[-2].outputs if "image/png" in o.get("data", {})] == \
        ["display_data"]
    text = "".join(o.get("text", "") for o in code[-1].outputs)
    assert "conservation met in 12 of 12 runs" in text
    # Read back here, without the notebook: lifetimes decide, not presets.
    runs = per_run(dataset.read(out))
    assert len(runs) == 12 and (runs["lost"] == 0).all()
    frame = runs.set_index(["traffic[0].retry.preset", "traffic[0].retry.lifetime",
                            "hosts[0].link.schedule.up[1].start"])["bounced_fraction"]
    for (preset, life, back), fraction in frame.items():
        assert fraction == (1.0 if back > life + DAY / 2 else 0.0), (preset, life, back)
    assert (out / "index.html").exists()
