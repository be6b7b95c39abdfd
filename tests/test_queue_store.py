"""Store conformance: one suite, run against each backend (eventsourcing style).

Both stores must persist batches atomically, replay them in order, forget
finished messages, keep the queue-ID high-water mark, and commit concurrent
writers in groups (fewer flushes than writers).  Backend-specific tests
follow: the simulated disk forgets what was not yet durable at a crash,
and SQLite survives closing and reopening the file.
"""
from __future__ import annotations

import asyncio


from mta import events as ev
from mta.events import codec
from mta.queue import MemoryStore, QueueState, SimulatedDisk, SqliteStore


def accepted(n: int, rcpts=("u@b.example",)) -> list[ev.Event]:
    msg = f"h/m{n}"
    out: list[ev.Event] = [ev.MessageSubmitted(t=float(n), host="h", msg=msg, trace=f"t{n}",
                                               mail_from="s@a.example", rcpts=tuple(rcpts), size=10)]
    out += [ev.Queued(t=float(n), host="h", msg=msg, trace=f"t{n}", rcpt=r, domain="b.example")
            for r in rcpts]
    return out


class StoreSuite:
    """Subclasses provide ``make(tmp_path)`` and ``flushes(store)``."""

    def make(self, tmp_path):
        raise NotImplementedError

    def flushes(self, store) -> int:
        raise NotImplementedError

    def test_roundtrip_in_order_with_bodies(self, tmp_path):
        store = self.make(tmp_path)

        async def go():
            for i in range(1, 4):
                await store.write(accepted(i), {f"h/m{i}": b"body%d" % i}, id_high=i)
            await store.write([ev.Deferred(t=5.0, host="h", msg="h/m2", trace="t2", rcpt="u@b.example",
                                           code=451, text="later", next_attempt=300.0)])
        asyncio.run(go())
        rec = store.load()
        mine = [codec.to_dict(e) for e in rec.events if e.msg == "h/m2"]
        assert mine[:-1] == [codec.to_dict(e) for e in accepted(2)] and mine[-1]["kind"] == "deferred"
        assert rec.bodies == {"h/m1": b"body1", "h/m2": b"body2", "h/m3": b"body3"}
        assert rec.id_high == 3
        state = QueueState().replay(rec.events)
        assert list(state.messages) == ["h/m1", "h/m2", "h/m3"]
        assert state.messages["h/m2"].rcpts["u@b.example"].next_attempt == 300.0
        assert store.body("h/m2") == b"body2"

    def test_forget_drops_events_and_body_in_the_same_batch(self, tmp_path):
        store = self.make(tmp_path)

        async def go():
            await store.write(accepted(1), {"h/m1": b"x"}, id_high=1)
            await store.write(accepted(2), {"h/m2": b"y"}, id_high=2)
            await store.write([ev.Relayed(t=9.0, host="h", msg="h/m1", trace="t1", rcpt="u@b.example",
                                          dest_host="mx", dest_ip="192.0.2.1")], forget=("h/m1",))
        asyncio.run(go())
        rec = store.load()
        assert {e.msg for e in rec.events} == {"h/m2"} and set(rec.bodies) == {"h/m2"}
        assert rec.id_high == 2       # the high-water mark outlives forgotten messages

    def test_concurrent_writers_share_commits(self, tmp_path):
        store = self.make(tmp_path)
        before = self.flushes(store)

        async def go():
            await asyncio.gather(*(store.write(accepted(i), {f"h/m{i}": b"b"}, id_high=i)
                                   for i in range(1, 51)))
        asyncio.run(go())
        assert len(store.load().bodies) == 50
        assert self.flushes(store) - before < 50


class TestMemoryStore(StoreSuite):
    def make(self, tmp_path):
        return MemoryStore(SimulatedDisk(), fsync_latency=0.001)

    def flushes(self, store) -> int:
        return store.disk.batches

    def test_crash_loses_only_what_was_not_yet_durable(self):
        disk = SimulatedDisk()
        store = MemoryStore(disk, fsync_latency=0.01)

        async def go():
            await store.write(accepted(1), {"h/m1": b"x"}, id_high=1)
            store.write(accepted(2), {"h/m2": b"y"}, id_high=2)   # not awaited: in the next flush
            store.crash()
            await asyncio.sleep(0.02)
        asyncio.run(go())
        rec = MemoryStore(disk).load()
        assert set(rec.bodies) == {"h/m1"} and {e.msg for e in rec.events} == {"h/m1"}


class TestSqliteStore(StoreSuite):
    def make(self, tmp_path):
        return SqliteStore(str(tmp_path / "queue.db"))

    def flushes(self, store) -> int:
        return store.commits

    def test_survives_reopen_and_uses_wal(self, tmp_path):
        path = str(tmp_path / "q.db")
        store = SqliteStore(path)

        async def go():
            await store.write(accepted(7), {"h/m7": b"kept"}, id_high=7)
        asyncio.run(go())
        store.close()
        again = SqliteStore(path)
        rec = again.load()
        assert rec.bodies == {"h/m7": b"kept"} and rec.id_high == 7
        assert again._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        again.close()

    def test_a_failed_commit_fails_every_writer_of_the_group(self, tmp_path):
        store = SqliteStore(str(tmp_path / "q.db"))
        store._db.execute("DROP TABLE bodies")   # the disk "fails" on the next commit

        async def go():
            return await asyncio.gather(store.write(accepted(1), {"h/m1": b"x"}),
                                        store.write(accepted(2), {"h/m2": b"y"}),
                                        return_exceptions=True)
        results = asyncio.run(go())
        assert all(isinstance(r, Exception) for r in results)
        # rolled back: nothing half-written
        assert store._db.execute("SELECT count(*) FROM events").fetchone()[0] == 0
