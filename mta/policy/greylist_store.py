"""Where greylisting remembers triplets and clients: records and two stores.

postgrey keeps two BerkeleyDB tables (``postgrey`` lines 716-728): the
triplet table, ``key -> "first,last"`` (first and last time the triplet
was seen, whole Unix seconds), and the client auto-whitelist table,
``client address -> "count,last"``.  The records below are those two
values; the stores are two backends of one small interface:

* :class:`MemoryGreylistStore`, a dict, for the simulation (no I/O at all);
* :class:`SqliteGreylistStore`, one SQLite file in WAL mode, for live use:
  it survives a restart, as postgrey's database does.

Both pass one conformance suite (``tests/test_greylist_store.py``).

Expiry is postgrey's nightly maintenance (``do_maintenance``, lines
246-264 and 279-286), written once here as pure predicates that both
stores apply: a triplet goes when it has not been seen for more than
``max_age``, or when it never passed (``last - first < delay``) and has not
been seen for more than ``retry_window``; a client goes when it has not
been seen for more than ``max_age``.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class TripletRecord:
    """postgrey's triplet value ``"first,last"``: whole seconds."""

    first: int
    last: int


@dataclass(frozen=True, slots=True)
class ClientRecord:
    """postgrey's auto-whitelist value ``"count,last"``: how many triplets
    of this client passed greylisting (at most one per hour counts), and
    when the client was last counted or seen whitelisted."""

    count: int
    last: int


@dataclass(frozen=True, slots=True)
class StoreUpdate:
    """The writes one greylist decision asks for (``None``: leave alone)."""

    key: str = ""
    triplet: TripletRecord | None = None
    client: str = ""
    client_record: ClientRecord | None = None

    def __bool__(self) -> bool:
        return self.triplet is not None or self.client_record is not None


def triplet_expired(rec: TripletRecord, now: int, *, delay: int, max_age: int,
                    retry_window: int) -> bool:
    """postgrey ``do_maintenance`` lines 253-259 (strict comparisons)."""
    if now - rec.last > max_age:
        return True
    return rec.last - rec.first < delay and now - rec.last > retry_window


def client_expired(rec: ClientRecord, now: int, *, max_age: int) -> bool:
    """postgrey ``do_maintenance`` line 282."""
    return now - rec.last > max_age


class GreylistStore(Protocol):
    """What the greylist stage needs from a store.  Calls are synchronous:
    the memory store does no I/O, and the SQLite store does one indexed
    read and at most one small write per recipient (see docs/design.md
    for the chain change that would move them off the event loop)."""

    def triplet(self, key: str) -> TripletRecord | None: ...

    def client(self, address: str) -> ClientRecord | None: ...

    def apply(self, update: StoreUpdate) -> None: ...

    def purge(self, now: int, *, delay: int, max_age: int,
              retry_window: int) -> tuple[int, int]: ...

    def counts(self) -> tuple[int, int]: ...

    def close(self) -> None: ...


class MemoryGreylistStore:
    """Both tables as dicts; the simulation's store.  Purging walks the
    dicts in insertion order, so what is removed never depends on hashing."""

    def __init__(self) -> None:
        self.triplets: dict[str, TripletRecord] = {}
        self.clients: dict[str, ClientRecord] = {}

    def triplet(self, key: str) -> TripletRecord | None:
        return self.triplets.get(key)

    def client(self, address: str) -> ClientRecord | None:
        return self.clients.get(address)

    def apply(self, update: StoreUpdate) -> None:
        if update.triplet is not None:
            self.triplets[update.key] = update.triplet
        if update.client_record is not None:
            self.clients[update.client] = update.client_record

    def purge(self, now: int, *, delay: int, max_age: int,
              retry_window: int) -> tuple[int, int]:
        old = [k for k, r in self.triplets.items()
               if triplet_expired(r, now, delay=delay, max_age=max_age,
                                  retry_window=retry_window)]
        for k in old:
            del self.triplets[k]
        old_clients = [a for a, r in self.clients.items()
                       if client_expired(r, now, max_age=max_age)]
        for a in old_clients:
            del self.clients[a]
        return len(old), len(old_clients)

    def counts(self) -> tuple[int, int]:
        return len(self.triplets), len(self.clients)

    def close(self) -> None:
        pass


_SCHEMA = """
CREATE TABLE IF NOT EXISTS triplets (key TEXT PRIMARY KEY, first INTEGER NOT NULL,
                                     last INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS clients (address TEXT PRIMARY KEY, count INTEGER NOT NULL,
                                    last INTEGER NOT NULL) WITHOUT ROWID;
"""


class SqliteGreylistStore:
    """Both tables in one SQLite file (WAL), for live use.

    Every :meth:`apply` is one transaction.  ``synchronous`` defaults to
    ``NORMAL``: in WAL mode a committed write survives a killed process
    (what "survives a restart" needs) and the file is never corrupted; a
    power cut may lose the last few records, which costs a client one more
    greylisting round, not a message.  ``FULL`` adds an fsync per RCPT.
    """

    def __init__(self, path: str, *, synchronous: str = "NORMAL") -> None:
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, got {synchronous!r}")
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
        self._db.executescript(_SCHEMA)
        self.commits = 0

    def triplet(self, key: str) -> TripletRecord | None:
        row = self._db.execute("SELECT first, last FROM triplets WHERE key = ?",
                               (key,)).fetchone()
        return TripletRecord(row[0], row[1]) if row else None

    def client(self, address: str) -> ClientRecord | None:
        row = self._db.execute("SELECT count, last FROM clients WHERE address = ?",
                               (address,)).fetchone()
        return ClientRecord(row[0], row[1]) if row else None

    def apply(self, update: StoreUpdate) -> None:
        if not update:
            return
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            if update.triplet is not None:
                db.execute("INSERT OR REPLACE INTO triplets (key, first, last) VALUES (?, ?, ?)",
                           (update.key, update.triplet.first, update.triplet.last))
            if update.client_record is not None:
                db.execute("INSERT OR REPLACE INTO clients (address, count, last) VALUES (?, ?, ?)",
                           (update.client, update.client_record.count, update.client_record.last))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.commits += 1

    def purge(self, now: int, *, delay: int, max_age: int,
              retry_window: int) -> tuple[int, int]:
        # The same predicates as triplet_expired / client_expired, in SQL.
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            t = db.execute("DELETE FROM triplets WHERE ? - last > ? "
                           "OR (last - first < ? AND ? - last > ?)",
                           (now, max_age, delay, now, retry_window)).rowcount
            c = db.execute("DELETE FROM clients WHERE ? - last > ?", (now, max_age)).rowcount
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.commits += 1
        return t, c

    def counts(self) -> tuple[int, int]:
        t = self._db.execute("SELECT count(*) FROM triplets").fetchone()[0]
        c = self._db.execute("SELECT count(*) FROM clients").fetchone()[0]
        return t, c

    def close(self) -> None:
        self._db.close()


__all__ = ["TripletRecord", "ClientRecord", "StoreUpdate", "GreylistStore",
           "MemoryGreylistStore", "SqliteGreylistStore", "triplet_expired", "client_expired"]
