"""Greylist store conformance: one suite, run against each backend (the
shape of tests/test_queue_store.py).  Both stores keep triplets and client
counters, replace records on update, purge by postgrey's maintenance rules
and agree with the pure expiry predicates; SQLite also survives closing and
reopening its file, in WAL mode."""
from __future__ import annotations

import random

from mta.policy.greylist_store import (ClientRecord, MemoryGreylistStore, SqliteGreylistStore,
                                       StoreUpdate, TripletRecord, client_expired,
                                       triplet_expired)

DAY = 86400
RULES = dict(delay=300, max_age=35 * DAY, retry_window=2 * DAY)


class GreylistStoreSuite:
    """Subclasses provide ``make(tmp_path)``."""

    def make(self, tmp_path):
        raise NotImplementedError

    def test_empty_store_knows_nothing(self, tmp_path):
        s = self.make(tmp_path)
        assert s.triplet("k") is None and s.client("192.0.2.1") is None
        assert s.counts() == (0, 0)

    def test_updates_write_and_replace_records(self, tmp_path):
        s = self.make(tmp_path)
        s.apply(StoreUpdate(key="k1", triplet=TripletRecord(10, 10)))
        s.apply(StoreUpdate(key="k1", triplet=TripletRecord(10, 400),
                            client="192.0.2.1", client_record=ClientRecord(1, 400)))
        s.apply(StoreUpdate(client="192.0.2.1", client_record=ClientRecord(2, 4000)))
        s.apply(StoreUpdate())                       # nothing to write
        assert s.triplet("k1") == TripletRecord(10, 400)
        assert s.client("192.0.2.1") == ClientRecord(2, 4000)
        assert s.counts() == (1, 1)

    def test_purge_applies_postgreys_maintenance_rules(self, tmp_path):
        s = self.make(tmp_path)
        now = 100 * DAY
        rows = {
            "passed-recently": TripletRecord(now - 10 * DAY, now - DAY),
            "passed-35d-ago": TripletRecord(now - 40 * DAY, now - 35 * DAY),      # kept: not >
            "passed-35d+1s": TripletRecord(now - 40 * DAY, now - 35 * DAY - 1),   # expired
            "waiting-2d": TripletRecord(now - 2 * DAY, now - 2 * DAY),            # kept
            "waiting-2d+1s": TripletRecord(now - 2 * DAY - 1, now - 2 * DAY - 1),  # expired
        }
        for k, r in rows.items():
            s.apply(StoreUpdate(key=k, triplet=r))
        s.apply(StoreUpdate(client="a", client_record=ClientRecord(5, now - 35 * DAY)))
        s.apply(StoreUpdate(client="b", client_record=ClientRecord(5, now - 35 * DAY - 1)))
        assert s.purge(now, **RULES) == (2, 1)
        assert sorted(k for k in rows if s.triplet(k)) == ["passed-35d-ago", "passed-recently",
                                                          "waiting-2d"]
        assert s.client("a") and s.client("b") is None

    def test_purge_agrees_with_the_pure_predicates(self, tmp_path):
        s = self.make(tmp_path)
        rng = random.Random(7)
        now = 200 * DAY
        rows = {}
        for n in range(300):
            last = now - rng.choice([0, 1, 299, 300, 2 * DAY, 2 * DAY + 1, 35 * DAY,
                                     35 * DAY + 1, rng.randrange(60 * DAY)])
            first = last - rng.choice([0, 299, 300, 301, rng.randrange(10 * DAY)])
            rows[f"k{n}"] = TripletRecord(first, last)
            s.apply(StoreUpdate(key=f"k{n}", triplet=rows[f"k{n}"],
                                client=f"c{n}", client_record=ClientRecord(n, last)))
        s.purge(now, **RULES)
        for k, r in rows.items():
            assert (s.triplet(k) is None) == triplet_expired(r, now, **RULES), (k, r)
            c = ClientRecord(int(k[1:]), r.last)
            assert (s.client("c" + k[1:]) is None) == client_expired(c, now, max_age=35 * DAY)


class TestMemoryGreylistStore(GreylistStoreSuite):
    def make(self, tmp_path):
        return MemoryGreylistStore()


class TestSqliteGreylistStore(GreylistStoreSuite):
    def make(self, tmp_path):
        return SqliteGreylistStore(str(tmp_path / "greylist.db"))

    def test_survives_reopen_in_one_wal_file(self, tmp_path):
        path = str(tmp_path / "g.db")
        s = SqliteGreylistStore(path)
        s.apply(StoreUpdate(key="192.0.2.0/a@x/b@y", triplet=TripletRecord(5, 305),
                            client="192.0.2.7", client_record=ClientRecord(3, 305)))
        s.close()
        again = SqliteGreylistStore(path)
        assert again.triplet("192.0.2.0/a@x/b@y") == TripletRecord(5, 305)
        assert again.client("192.0.2.7") == ClientRecord(3, 305)
        assert again._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        again.close()
        assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(("-wal", "-shm"))) \
            == ["g.db"]

    def test_every_update_is_committed_at_once(self, tmp_path):
        import sqlite3
        path = str(tmp_path / "g.db")
        s = SqliteGreylistStore(path)
        s.apply(StoreUpdate(key="k", triplet=TripletRecord(1, 2)))
        other = sqlite3.connect(path)            # a second reader sees it without close()
        assert other.execute("SELECT first, last FROM triplets").fetchall() == [(1, 2)]
        other.close()
        s.close()
