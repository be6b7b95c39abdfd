"""Event logs on disk: canonical JSONL, Parquet, SQLite, and the SQLite sink
(a run's JSONL is written by :class:`mta.events.sinks.RunLogSink`).

The canonical form of a run is ``events.jsonl``: one event per line in the
encoding of :mod:`mta.events.codec` (sorted keys, compact separators, float
fields always floats, NaN refused), so two runs compare byte for byte.
This module imports :mod:`sim.events`, so its readers know the run and
world kinds as well as the mail kinds.

Reading is all or nothing: :func:`read_jsonl` parses the whole file first
and raises :class:`LogError` naming the file and line for a truncated last
line (no final newline), a line that is not JSON, or a line that is not a
valid event; it never returns a partial log.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
from pathlib import Path
from typing import Any, Iterable

import sim.events  # noqa: F401 - registers the run and world kinds, so every kind decodes
from mta.events.base import Event, EventError, event_kinds
from mta.events.codec import decode, encode, from_dict, to_dict


class LogError(ValueError):
    """An event log could not be read; the message names the file and line."""


# --------------------------------------------------------------------------
# JSONL
# --------------------------------------------------------------------------

def write_jsonl(events: Iterable[Event], path: str | os.PathLike) -> Path:
    """Write ``events`` canonically to ``path`` (replacing it atomically)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="ascii", newline="\n") as fh:
        for ev in events:
            fh.write(encode(ev))
            fh.write("\n")
    os.replace(tmp, path)
    return path


def read_jsonl(path: str | os.PathLike) -> list[Event]:
    """Load a whole JSONL log, or raise :class:`LogError` naming the line."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LogError(f"{path}: cannot read: {exc.strerror}") from None
    if not raw:
        return []
    lines = raw.split(b"\n")
    if lines[-1] != b"":
        # The writer ends every line with a newline: a missing one means
        # the writer died mid-line, so the log is incomplete.
        raise LogError(f"{path}:{len(lines)}: truncated log (last line has no newline)")
    events: list[Event] = []
    for n, bline in enumerate(lines[:-1], start=1):
        try:
            text = bline.decode("utf-8")
        except UnicodeDecodeError:
            raise LogError(f"{path}:{n}: not UTF-8") from None
        if not text.strip():
            raise LogError(f"{path}:{n}: empty line")
        try:
            events.append(decode(text))
        except EventError as exc:
            raise LogError(f"{path}:{n}: {exc}") from None
    return events


# --------------------------------------------------------------------------
# Parquet (columnar copy for pandas and notebooks)
# --------------------------------------------------------------------------

def _arrow_type(annotation: str):
    import pyarrow as pa
    a = annotation.replace(" ", "")
    table = {
        "str": pa.string(), "str|None": pa.string(),
        "int": pa.int64(), "int|None": pa.int64(),
        "float": pa.float64(), "float|None": pa.float64(),
        "bool": pa.bool_(), "bool|None": pa.bool_(),
        "tuple[str,...]": pa.list_(pa.string()),
    }
    return table.get(a)  # None: stored as canonical JSON text


def _columns() -> dict[str, Any]:
    """Column name -> arrow type (None = JSON text), over every event kind."""
    import pyarrow as pa
    cols: dict[str, Any] = {"kind": pa.string()}
    json_cols: set[str] = set()
    for cls in event_kinds().values():
        for f in dataclasses.fields(cls):
            typ = _arrow_type(str(f.type))
            if typ is None or (f.name in cols and cols[f.name] != typ):
                json_cols.add(f.name)
            cols.setdefault(f.name, typ)
    for name in json_cols:
        cols[name] = None
    return cols


def write_parquet(events: Iterable[Event], path: str | os.PathLike) -> Path:
    """Write a Parquet copy: one row per event, one column per field name.

    Fields a kind does not have are null; fields whose type has no plain
    Arrow equivalent (such as ``params``) are stored as canonical JSON text.
    Row order is log order.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    cols = _columns()
    names = sorted(cols)
    data: dict[str, list] = {n: [] for n in names}
    for ev in events:
        d = to_dict(ev)
        for n in names:
            v = d.get(n)
            if cols[n] is None and n in d:
                v = json.dumps(v, sort_keys=True, separators=(",", ":"))
            data[n].append(v)
    schema = pa.schema([(n, cols[n] if cols[n] is not None else pa.string()) for n in names])
    table = pa.table(data, schema=schema)
    path = Path(path)
    pq.write_table(table, path)
    return path


def read_parquet(path: str | os.PathLike) -> list[Event]:
    """Rebuild the events of :func:`write_parquet` (exactly, field for field)."""
    import pyarrow.parquet as pq
    path = Path(path)
    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as exc:  # pyarrow raises several unrelated types
        raise LogError(f"{path}: not a readable Parquet event log: {exc}") from None
    cols = _columns()
    kinds = event_kinds()
    out: list[Event] = []
    for n, row in enumerate(rows, start=1):
        cls = kinds.get(row.get("kind"))
        if cls is None:
            raise LogError(f"{path}: row {n}: unknown event kind {row.get('kind')!r}")
        d: dict[str, Any] = {"kind": cls.kind}
        for f in dataclasses.fields(cls):
            v = row.get(f.name)
            if cols.get(f.name) is None and v is not None:
                v = json.loads(v)
            d[f.name] = v
        try:
            out.append(from_dict(d))
        except EventError as exc:
            raise LogError(f"{path}: row {n}: invalid event: {exc}") from None
    return out


def events_frame(events: Iterable[Event]):
    """A pandas DataFrame of the events (one row each, ``seq`` = log position)."""
    import pandas as pd
    rows = []
    for i, ev in enumerate(events):
        d = to_dict(ev)
        d["seq"] = i
        rows.append(d)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------
# SQLite (live components)
# --------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq   INTEGER PRIMARY KEY,
    t     REAL NOT NULL,
    host  TEXT NOT NULL,
    kind  TEXT NOT NULL,
    msg   TEXT,
    trace TEXT,
    rcpt  TEXT,
    data  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_msg ON events(msg);
CREATE INDEX IF NOT EXISTS events_trace ON events(trace);
"""


class SqliteSink:
    """Stores events in SQLite (WAL), each with its canonical JSON line.

    ``commit_every`` events are committed together (1 = every event durable
    as soon as ``emit`` returns); :meth:`flush` commits what is pending.
    The sink appends to an existing database, continuing its sequence.
    """

    def __init__(self, path: str | os.PathLike, commit_every: int = 1) -> None:
        self.path = Path(path)
        self.commit_every = max(1, int(commit_every))
        self._db = sqlite3.connect(str(self.path))
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._pending = 0

    def emit(self, event: Event) -> None:
        self._db.execute(
            "INSERT INTO events (t, host, kind, msg, trace, rcpt, data) VALUES (?,?,?,?,?,?,?)",
            (float(event.t), event.host, event.kind, getattr(event, "msg", None),
             getattr(event, "trace", None), getattr(event, "rcpt", None), encode(event)))
        self._pending += 1
        if self._pending >= self.commit_every:
            self.flush()

    def flush(self) -> None:
        self._db.commit()
        self._pending = 0

    def close(self) -> None:
        self.flush()
        self._db.close()


def read_sqlite(path: str | os.PathLike) -> list[Event]:
    """All events of a :class:`SqliteSink` database, in emission order."""
    path = Path(path)
    if not path.exists():
        raise LogError(f"{path}: no such event database")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT seq, data FROM events ORDER BY seq").fetchall()
    except sqlite3.DatabaseError as exc:
        raise LogError(f"{path}: not an event database: {exc}") from None
    finally:
        db.close()
    out = []
    for seq, data in rows:
        try:
            out.append(decode(data))
        except EventError as exc:
            raise LogError(f"{path}: row seq={seq}: {exc}") from None
    return out


def load_events(path: str | os.PathLike) -> list[Event]:
    """Load a log by file type (.jsonl, .parquet, .sqlite/.db) or run dir."""
    path = Path(path)
    if path.is_dir():
        path = path / "events.jsonl"
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return read_parquet(path)
    if suffix in (".sqlite", ".db", ".sqlite3"):
        return read_sqlite(path)
    return read_jsonl(path)
