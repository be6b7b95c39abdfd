"""The sweep's results: one Parquet dataset, a part file per finished run.

``DIR/dataset/part-<run id>.parquet`` holds one row per guarantee of that
run (one row with an empty ``guarantee`` when the run has none, or when it
could not run: ``error`` says why).  Columns, in order: ``run_id``,
``scenario``, ``seed``, one column per varied key named by its key path
(seconds for durations, the number for numbers, text otherwise), the
guarantee's ``guarantee``, ``expected``, ``status``, ``decided``, ``met``,
``evidence`` (how many items the check judged, None when undecided) and
``evidence_unit`` (what they are), ``detail``, the run's counts (:class:`~sim.evidence.lifecycle.Counts`,
the verdict's ``counts``), ``events``, ``sim_time`` and ``error``.

A part file appears whole or not at all (written aside, then renamed), so
an interrupted sweep keeps exactly the runs that finished, and a rerun
into the same folder skips them.  ``DIR/sweep.json`` records the plan and
the base scenario, so ``mxsim sweep --resume DIR`` needs nothing else.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from sim.evidence.lifecycle import Counts
from sim.evidence.verdict import Verdict
from sim.sweep.plan import Point, Vary

DATASET = "dataset"
MANIFEST = "sweep.json"
_PREFIX, _SUFFIX = "part-", ".parquet"


def schema(varies: tuple[Vary, ...] | list[Vary]) -> pa.Schema:
    """The dataset's columns for a sweep over ``varies``."""
    cols = [("run_id", pa.string()), ("scenario", pa.string()), ("seed", pa.int64())]
    cols += [(v.key, pa.float64() if v.numeric else pa.string()) for v in varies]
    cols += [("guarantee", pa.string()), ("expected", pa.string()), ("status", pa.string()),
             ("decided", pa.bool_()), ("met", pa.bool_()), ("evidence", pa.int64()),
             ("evidence_unit", pa.string()), ("detail", pa.string())]
    cols += [(k, pa.int64()) for k in Counts.keys()]
    cols += [("events", pa.int64()), ("sim_time", pa.float64()), ("error", pa.string())]
    return pa.schema(cols)


def rows(scenario: str, varies: tuple[Vary, ...], point: Point, verdict: Verdict | None,
         events: int = 0, sim_time: float = 0.0, error: str | None = None) -> list[dict]:
    """The dataset rows of one run (``verdict`` None: it could not run)."""
    base: dict[str, Any] = {"run_id": point.run_id, "scenario": scenario, "seed": point.seed}
    base.update({v.key: v.column_value(x) for v, x in zip(varies, point.values)})
    counts = verdict.counts.to_dict() if verdict is not None else dict.fromkeys(Counts.keys())
    tail = {**counts, "events": events if verdict else None,
            "sim_time": sim_time if verdict else None, "error": error}
    empty = {"guarantee": None, "expected": None, "status": None, "decided": None,
             "met": None, "evidence": None, "evidence_unit": None, "detail": None}
    if verdict is None or not verdict.guarantees:
        return [{**base, **empty, **tail}]
    return [{**base, "guarantee": g.id, "expected": g.expected, "status": g.status,
             "decided": g.decided, "met": g.met, "evidence": g.judged,
             "evidence_unit": g.unit or None, "detail": g.detail, **tail}
            for g in verdict.guarantees]


def prime() -> None:
    """Pay the writer's one-off cost now: pyarrow imports pandas the first
    time it builds an array (0.2 s of CPU, a tenth of a sweep of 100 short
    runs on 2 workers), which :func:`sim.sweep.run.connect` does while the
    workers start rather than after the first run."""
    pa.array([0], type=pa.int64())


def part_path(out: Path, run_id: str) -> Path:
    return out / DATASET / f"{_PREFIX}{run_id}{_SUFFIX}"


def write_part(out: Path, varies: tuple[Vary, ...], run_id: str, run_rows: list[dict]) -> Path:
    """Write one run's rows as its part file, atomically."""
    path = part_path(out, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A dot-file is skipped by Parquet dataset readers until it is renamed.
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(pa.Table.from_pylist(run_rows, schema=schema(varies)), tmp)
    os.replace(tmp, path)
    return path


def done_runs(out: Path) -> set[str]:
    """Run IDs whose part file is complete in ``out``."""
    folder = out / DATASET
    if not folder.is_dir():
        return set()
    return {p.name[len(_PREFIX):-len(_SUFFIX)] for p in folder.iterdir()
            if p.name.startswith(_PREFIX) and p.name.endswith(_SUFFIX)}


def read(out: Path):
    """The whole dataset as a pandas DataFrame, sorted by run and guarantee
    order (parts are read in file-name order, rows keep their order)."""
    import pandas as pd
    folder = out / DATASET
    parts = sorted(p for p in folder.glob(f"{_PREFIX}*{_SUFFIX}")) if folder.is_dir() else []
    if not parts:
        return pd.DataFrame()
    return pd.concat([pq.read_table(p).to_pandas() for p in parts], ignore_index=True)


def write_manifest(out: Path, manifest: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, out / MANIFEST)


def read_manifest(out: Path) -> dict | None:
    path = out / MANIFEST
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))
