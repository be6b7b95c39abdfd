"""Delivery on real loopback sockets: the same code as in the simulation.

Two MX hosts on 127.0.0.2 and 127.0.0.3 (one port, found by binding the
second): the primary has nothing listening, so the queue must fall back to
the secondary, an aiosmtpd server.  DNS answers come from zone text.
"""
from __future__ import annotations

import asyncio

from mta import events as ev
from mta.context import live_context
from mta.delivery.client import DeliveryConfig
from mta.events.sinks import MemorySink
from mta.policy import PolicyChain
from mta.queue import QueueConfig, QueueManager, SqliteStore
from mta.smtp.server import SmtpServer
from sim.world.dns import SimResolver
from test_queue_support import FixedSchedule, Recorder, serve, zones

ZONE = zones({"b.example": ["@ MX 10 mx1", "@ MX 20 mx2", "mx1 A 127.0.0.2", "mx2 A 127.0.0.3"]})


async def until(cond, timeout=20.0):
    for _ in range(int(timeout / 0.01)):
        if cond():
            return True
        await asyncio.sleep(0.01)
    return False


def test_live_fallback_accept_and_reuse(tmp_path):
    async def go():
        rec = Recorder("mx2", rcpt_replies={"later@b.example": ["451 4.2.0 greylisted"]})
        srv = await serve(rec, "mx2.b.example", port=0, host="127.0.0.3")
        port = srv.sockets[0].getsockname()[1]
        sink = MemorySink()
        ctx = live_context("relay.test", sink, resolver=SimResolver.from_text(ZONE), seed=1)
        store = SqliteStore(str(tmp_path / "q.db"))
        q = QueueManager(ctx, store, QueueConfig(retry=FixedSchedule(interval=0.5, lifetime=60)),
                         DeliveryConfig(ports={"127.0.0.2": port, "127.0.0.3": port},
                                        connect_timeout=2, command_timeout=5))
        await q.start()
        server = SmtpServer(ctx, PolicyChain(), q)
        relay = await server.start(host="127.0.0.1", port=0)
        rport = relay.sockets[0].getsockname()[1]
        import aiosmtplib
        for i in range(3):
            await aiosmtplib.send(f"Subject: {i}\r\n\r\nhi\r\n".encode(), sender="s@a.example",
                                  recipients=[f"u{i}@b.example"] + (["later@b.example"] if i == 0 else []),
                                  hostname="127.0.0.1", port=rport, local_hostname="client.test",
                                  timeout=5)
        ok = await until(lambda: len(rec.rcpts()) == 4)
        await server.stop()
        await q.close()
        srv.close()
        store.close()
        return ok, rec, sink

    ok, rec, sink = asyncio.run(go())
    assert ok, rec.rcpts()
    assert sorted(rec.rcpts()) == ["later@b.example", "u0@b.example", "u1@b.example", "u2@b.example"]
    connects = [e for e in sink.events if isinstance(e, ev.ConnectAttempt)]
    assert connects[0].dest_host == "mx1.b.example" and connects[0].outcome == "refused"
    assert {e.dest_host for e in sink.of_kind(ev.Relayed)} == {"mx2.b.example"}
    assert len(sink.of_kind(ev.Deferred)) == 1 and len(sink.of_kind(ev.MessageAccepted)) == 3
    # Later messages reused the cached connection to mx2 where they could.
    assert rec.sessions < rec.transactions
