"""A simulated host crash mid-queue: nothing acknowledged is lost.

A client sends mail through a relay (the real receiving server,
mta/server.py, in front of a QueueManager with a MemoryStore whose disk
takes 2 ms per flush) to a final MX.  It records every 250 it gets after
DATA.  The relay crashes in the middle of the load, with messages arriving,
queued and in flight, and comes back 30 s later from its simulated disk.
Every message the client saw acknowledged must reach the final MX;
duplicates (delivered, but the relay died before recording it) are counted.
"""
from __future__ import annotations

import asyncio

import aiosmtplib

from mta import events as ev
from mta.delivery import DeliveryConfig
from mta.policy import PolicyChain
from mta.queue import MemoryStore, QueueConfig, QueueManager, SimulatedDisk
from mta.queue.message import message_id
from mta.server import SmtpServer
from sim.network import LinkSpec
from sim.world import World
from test_queue_support import FixedSchedule, Recorder, serve, zones

ZONE = {"b.example": ["@ MX 10 mx", "mx A 192.0.2.2"], "relay.example": ["@ A 192.0.2.5"]}
N = 120
CRASH_AT, RESTART_AT = 1.5, 31.5


def test_crash_mid_queue_loses_nothing_acknowledged():
    world = World(seed=11)
    relay = world.add_host("relay.example", "192.0.2.5", link=LinkSpec(latency=0.01))
    mx = world.add_host("mx.b.example", "192.0.2.2", link=LinkSpec(latency=0.02))
    client = world.add_host("client.example", "192.0.2.7")
    world.set_zones(zones(ZONE))
    sink = Recorder("final")
    world.run_until_complete(mx, serve(sink, mx.name))

    disk = SimulatedDisk()
    config = QueueConfig(retry=FixedSchedule(interval=60, lifetime=86400))
    delivery = DeliveryConfig(connect_timeout=10, command_timeout=30)
    box: dict[str, object] = {}

    async def boot(restarted: bool) -> int:
        q = QueueManager(relay.ctx, MemoryStore(disk, fsync_latency=0.002), config, delivery)
        n = await q.start(restarted=restarted)
        server = SmtpServer(relay.ctx, PolicyChain(), q)
        await server.start(port=25)
        box.update(q=q, server=server)
        return n

    async def crash() -> None:
        await box["server"].stop()      # the listening socket and its sessions die too
        box["q"].crash()

    acked: list[str] = []

    async def send(i: int) -> None:
        data = f"Message-ID: <c{i}@client.example>\r\nSubject: {i}\r\n\r\nbody {i}\r\n".encode()
        while True:               # a real sender retries until it gets a 250
            smtp = aiosmtplib.SMTP(hostname="192.0.2.5", port=25, local_hostname="client.example",
                                   timeout=10)
            try:
                await smtp.connect()
                await smtp.sendmail("s@client.example", [f"u{i}@b.example"], data)
                acked.append(f"c{i}@client.example")
                await smtp.quit()
                return
            except (aiosmtplib.SMTPException, OSError):
                smtp.close()
                if f"c{i}@client.example" in acked:
                    return
                await asyncio.sleep(5)

    async def load() -> None:
        sem = asyncio.Semaphore(10)

        async def one(i):
            async with sem:
                await send(i)
        await asyncio.gather(*(one(i) for i in range(N)))

    world.run_until_complete(relay, boot(False))
    world.spawn(client, load())
    world.run(until=CRASH_AT)
    before = len(acked)
    world.run_until_complete(relay, crash())
    world.run(until=RESTART_AT)
    recovered = world.run_until_complete(relay, boot(True))
    world.run(until=600)

    assert 0 < before < N                      # the crash really came mid-load
    assert recovered > 0                       # ... with mail still queued
    crashed = [e for e in world.events if isinstance(e, ev.HostCrashed)]
    restarted = [e for e in world.events if isinstance(e, ev.HostRestarted)]
    assert len(crashed) == 1 and len(restarted) == 1 and restarted[0].recovered == recovered
    delivered = [message_id(data) for _, _, data in sink.messages]
    assert sorted(set(acked)) == sorted(acked) and len(acked) == N
    missing = set(acked) - set(delivered)
    assert not missing, f"acknowledged but never delivered: {sorted(missing)}"
    duplicates = len(delivered) - len(set(delivered))
    # Only messages in flight at the crash may be delivered twice.
    interrupted = {e.msg for e in world.events if isinstance(e, ev.AttemptStarted) and e.t < CRASH_AT}
    interrupted -= {e.msg for e in world.events if isinstance(e, ev.Relayed) and e.t < CRASH_AT}
    print(f"acked before crash={before} recovered={recovered} duplicates={duplicates} interrupted={len(interrupted)}")
    assert duplicates <= len(interrupted)
    assert box["q"].state.pending() == 0
