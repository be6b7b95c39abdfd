"""The live queue store: SQLite in WAL mode with group commit.

A message is acknowledged only once its events and body are durable.  One
fsync per message would cap a relay at the disk's fsync rate, so
concurrent writers share commits: :meth:`SqliteStore.write` only enqueues a
batch; a single flusher takes *everything* enqueued so far and writes it in
one transaction (one WAL append and, with ``synchronous=FULL``, one fsync),
then resolves every waiter of that group.  While that commit runs in a
worker thread (``run_in_executor``, so the event loop keeps accepting),
new batches pile up and form the next group.

Schema: ``events(seq, msg, data)`` with the canonical JSON of each event,
``bodies(msg, data)``, and ``meta(key, value)`` for the highest queue-ID
number issued.  When a message is finished its rows are deleted in the
same transaction as its final events, so replay at start only reads what
is still queued.
"""
from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor

from mta.events import Event, codec
from mta.queue.store import Recovered, abandon_pending, fail_pending

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT,
                                   msg TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_msg ON events (msg);
CREATE TABLE IF NOT EXISTS bodies (msg TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


#: Rows per multi-row statement: few statements per commit, and at most
#: 2 x 400 variables (under SQLite's old default limit of 999).
_CHUNK = 400


def _many(db: sqlite3.Connection, sql: str, one: str, rows: list[tuple]) -> None:
    """Run ``sql`` with its ``{}`` replaced by ``one`` repeated (joined by
    commas) once per row, in chunks; rows keep their order (the events'
    ``seq`` follows the VALUES order)."""
    for i in range(0, len(rows), _CHUNK):
        part = rows[i:i + _CHUNK]
        db.execute(sql.format(", ".join([one] * len(part))), [v for row in part for v in row])


class SqliteStore:
    """Durable queue store for live runs (see the module docstring).

    ``synchronous`` is SQLite's setting: ``FULL`` (the default) fsyncs the
    WAL at every commit, so an acknowledged message survives power loss;
    ``NORMAL`` survives a killed process but not a power cut.
    """

    def __init__(self, path: str, *, synchronous: str = "FULL") -> None:
        self.path = path
        # One connection, used only from the single worker thread (and from
        # the caller's thread in load()/body() while no commit runs).
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.executescript(_SCHEMA)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-commit")
        self._pending: list[tuple[list[tuple[str, str]], dict[str, bytes], tuple[str, ...], int, asyncio.Future]] = []
        self._flusher: asyncio.Task | None = None
        self._bodies: dict[str, bytes] = {}   # bodies of queued messages, read-through cache
        self.commits = 0                      # transactions written (one fsync each)
        self.batches = 0                      # write() calls

    # ------------------------------------------------------------------
    def write(self, events: list[Event], bodies: dict[str, bytes] | None = None,
              forget: tuple[str, ...] = (), id_high: int = 0) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        # Events of a message finished in this very batch are not written
        # at all: the batch deletes the message's rows anyway.
        gone = set(forget)
        rows = [(e.msg, codec.encode(e))  # type: ignore[attr-defined]
                for e in events if getattr(e, "msg", None) is not None and e.msg not in gone]
        bodies = dict(bodies or {})
        self._bodies.update(bodies)
        for m in forget:
            self._bodies.pop(m, None)
        self._pending.append((rows, bodies, tuple(forget), id_high, fut))
        self.batches += 1
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        return fut

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            group, self._pending = self._pending, []
            try:
                await loop.run_in_executor(self._executor, self._commit, group)
            except asyncio.CancelledError:   # crash(): nobody waits for this group any more
                fail_pending([item[-1] for item in group], "stopped before the commit finished")
                raise
            except Exception as exc:  # the disk failed: nobody in the group is durable
                for *_, fut in group:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for *_, fut in group:
                if not fut.done():
                    fut.set_result(None)

    def _commit(self, group: list) -> None:
        """One transaction for a whole group (runs in the worker thread)."""
        db = self._db
        rows: list[tuple[str, str]] = []
        bodies: list[tuple[str, bytes]] = []
        forget: list[tuple[str]] = []
        high = 0
        for r, b, f, h, _ in group:
            rows.extend(r)
            bodies.extend(b.items())
            forget.extend((m,) for m in f)
            high = max(high, h)
        db.execute("BEGIN IMMEDIATE")
        try:
            # Multi-row statements, not executemany: each statement step
            # releases and retakes the GIL, and retaking it while the event
            # loop is busy can wait a whole switch interval (5 ms).  With a
            # statement per row the group's commit (and every 250 after DATA
            # that waits for it) could wait that long once per row.
            _many(db, "INSERT INTO events (msg, data) VALUES {}", "(?, ?)", rows)
            _many(db, "INSERT OR REPLACE INTO bodies (msg, data) VALUES {}", "(?, ?)", bodies)
            if forget:
                _many(db, "DELETE FROM events WHERE msg IN ({})", "?", forget)
                _many(db, "DELETE FROM bodies WHERE msg IN ({})", "?", forget)
            if high:
                db.execute("INSERT INTO meta (key, value) VALUES ('id_high', ?) "
                           "ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)",
                           (high,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.commits += 1

    # ------------------------------------------------------------------
    def load(self) -> Recovered:
        db = self._db
        events = [codec.decode(d)
                  for (d,) in db.execute("SELECT data FROM events ORDER BY seq")]
        bodies = {m: bytes(b) for m, b in db.execute("SELECT msg, data FROM bodies")}
        self._bodies = dict(bodies)
        row = db.execute("SELECT value FROM meta WHERE key = 'id_high'").fetchone()
        return Recovered(events, bodies, row[0] if row else 0)

    def body(self, msg: str) -> bytes:
        return self._bodies[msg]

    def crash(self) -> None:
        abandon_pending(self, "stopped before the batch was committed")

    def close(self) -> None:
        self.crash()
        self._executor.shutdown(wait=True)
        self._db.close()
