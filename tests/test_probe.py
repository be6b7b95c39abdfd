"""The connectivity probe on real loopback sockets, against a real queue.

The customer's server is an aiosmtpd on 127.0.0.1 (a 554 banner first,
then a normal one); the queue holds its domain.  Only a 220 greeting
releases, and the probe does not knock while nothing is held.
"""
from __future__ import annotations

import asyncio
import socket

from aiosmtpd.smtp import SMTP

from mta import events as ev
from mta.context import live_context
from mta.delivery.client import DeliveryConfig, Route
from mta.events.sinks import MemorySink
from mta.ondemand.probe import ConnectivityProbe, ProbeConfig
from mta.queue import MemoryStore, QueueConfig, QueueManager
from test_queue_support import FixedSchedule, Recorder


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Refusing(SMTP):
    """A server that greets with 554 (RFC 5321 §3.1: no service here)."""

    async def _handle_client(self):
        await self.push("554 5.3.2 not now")
        self.transport.close()


def test_probe_releases_only_on_a_220_greeting():
    async def go():
        port = free_port()
        sink = MemorySink()
        ctx = live_context("backup.isp.test", sink, seed=1)
        q = QueueManager(ctx, MemoryStore(), QueueConfig(retry=FixedSchedule(), hold_domains=("dial.test",)),
                         DeliveryConfig(routes={"dial.test": Route(("127.0.0.1",), port=port)},
                                        connect_timeout=2, command_timeout=5))
        await q.start()
        probe = ConnectivityProbe(ctx, q, ProbeConfig(domain="dial.test", target="127.0.0.1",
                                                      port=port, interval=0.05, timeout=2))
        assert await probe.probe_once() == 0 and probe.probes == 0     # nothing held: no knock
        for i in range(3):
            await q.submit("s@a.test", [f"u{i}@dial.test"], b"Subject: x\r\n\r\nx\r\n")
        assert await probe.probe_once() == 0                          # nothing listening
        rec = Recorder("customer")
        loop = asyncio.get_running_loop()
        srv = await loop.create_server(lambda: Refusing(rec, hostname="mail.dial.test"), "127.0.0.1", port)
        assert await probe.probe_once() == 0                          # 554 banner
        srv.close()
        await srv.wait_closed()
        srv = await loop.create_server(lambda: SMTP(rec, hostname="mail.dial.test"), "127.0.0.1", port)
        task = asyncio.create_task(probe.run())                      # on its schedule
        for _ in range(2000):          # up to 20 s on a loaded machine
            if len(rec.messages) == 3:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        await q.close()
        srv.close()
        return sink, rec, q

    sink, rec, q = asyncio.run(go())
    probes = [e for e in sink.events if isinstance(e, ev.ConnectAttempt) and e.purpose == "probe"]
    assert [p.outcome for p in probes[:2]] == ["refused", "connected"]
    assert probes[1].greeting.startswith("554") and probes[2].greeting.startswith("220")
    released = [e for e in sink.events if isinstance(e, ev.Released)]
    assert [(r.trigger, r.count) for r in released] == [("probe", 3)]
    assert len(rec.messages) == 3 and q.held_count("dial.test", False) == 0
