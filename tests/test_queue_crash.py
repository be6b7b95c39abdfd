"""A simulated host crash mid-queue: nothing acknowledged is lost.

A client sends mail through a relay (the real receiving server,
mta/smtp/server.py, in front of a QueueManager with a MemoryStore whose disk
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
from mta.delivery.client import DeliveryConfig
from mta.policy import PolicyChain
from mta.queue.manager import QueueManager
from mta.queue.policy import QueueConfig
from mta.queue.store import MemoryStore
from sim.world.disk import SimulatedDisk
from mta.queue.message import message_id
from mta.smtp.server import SmtpServer
from sim.world.network import LinkSpec
from sim.world.core import World
from helpers.queue import FixedSchedule, Recorder, gather_bounded, serve, zones

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
        await gather_bounded(N, 10, send)

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


def test_crash_during_the_commit_answers_451_at_once():
    """A session waiting for its batch to be durable when the queue crashes
    is told 451 at once (the client keeps the message), instead of hanging
    until a timeout: the crash fails the batches it throws away."""
    world = World(seed=3)
    relay = world.add_host("relay.example", "192.0.2.5")
    client = world.add_host("client.example", "192.0.2.7")
    disk = SimulatedDisk()
    q = QueueManager(relay.ctx, MemoryStore(disk, fsync_latency=1.0),
                     QueueConfig(retry=FixedSchedule()), DeliveryConfig())
    server = SmtpServer(relay.ctx, PolicyChain(), q)

    async def boot():
        await q.start()
        await server.start(port=25)

    async def send():
        smtp = aiosmtplib.SMTP(hostname="192.0.2.5", port=25, local_hostname="client.example",
                               timeout=120)
        await smtp.connect()
        try:
            await smtp.sendmail("s@client.example", ["u@b.example"], b"Subject: x\r\n\r\nbody\r\n")
        except aiosmtplib.SMTPDataError as exc:
            return exc.code, asyncio.get_running_loop().time()
        return 250, asyncio.get_running_loop().time()

    world.run_until_complete(relay, boot())
    task = world.spawn(client, send())
    world.run(until=0.5)                    # DATA is waiting for the 1 s fsync
    assert not task.done()
    world.run_until_complete(relay, _crash(q))
    world.run(until=5)
    assert task.done()
    code, t = task.result()
    assert code == 451 and t < 1.0
    assert MemoryStore(disk).load().events == []      # nothing reached the disk


async def _crash(q: QueueManager) -> None:
    q.crash()


def test_acceptance_abandoned_during_the_commit_is_still_queued():
    """The SMTP client goes away while its message is being committed: the
    batch still becomes durable, so the message must be queued and
    delivered now, not left on disk unseen until the next restart."""
    world = World(seed=4)
    relay = world.add_host("relay.example", "192.0.2.5")
    disk = SimulatedDisk()
    q = QueueManager(relay.ctx, MemoryStore(disk, fsync_latency=1.0),
                     QueueConfig(retry=FixedSchedule(), local_domains=("relay.example",)),
                     DeliveryConfig())
    world.run_until_complete(relay, q.start())
    task = world.spawn(relay, q.accept(conn="c1", client_ip="192.0.2.7", helo="client.example",
                                       mail_from="s@client.example", rcpts=["u@relay.example"],
                                       acknowledged=["u@relay.example"],
                                       data=b"Subject: x\r\n\r\nbody\r\n"))
    world.run(until=0.5)
    task.cancel()                       # the session died mid-commit
    world.run(until=5)
    assert task.cancelled()
    accepted = [e for e in world.events if isinstance(e, ev.MessageAccepted)]
    delivered = [e for e in world.events if isinstance(e, ev.DeliveredToMailbox)]
    assert len(accepted) == 1 and [e.rcpt for e in delivered] == ["u@relay.example"]
    assert q.mailboxes.count("u@relay.example") == 1
    assert q.state.messages == {} and disk.events == {}     # finished and forgotten


def test_dsn_waits_until_its_bounce_is_durable():
    """With a slow disk, the DSN about a bounce is not delivered before the
    batch recording that bounce is durable (a crash in between would bring
    the recipient back after its sender was told it failed)."""
    world = World(seed=6)
    a = world.add_host("a.example", "192.0.2.1")
    world.set_zones(zones({"null.example": ["@ MX 0 ."], "a.example": ["@ A 192.0.2.1"]}))
    q = QueueManager(a.ctx, MemoryStore(SimulatedDisk(), fsync_latency=2.0),
                     QueueConfig(retry=FixedSchedule(), local_domains=("a.example",)),
                     DeliveryConfig())
    world.run_until_complete(a, q.start())
    world.run_until_complete(a, q.submit("s@a.example", ["u@null.example"],
                                         b"Subject: x\r\n\r\nbody\r\n"))
    world.run(until=60)
    bounced = [e for e in world.events if isinstance(e, ev.Bounced)]
    dsn = [e for e in world.events if isinstance(e, ev.DeliveredToMailbox) and e.rcpt == "s@a.example"]
    assert len(bounced) == 1 and bounced[0].code == 556 and len(dsn) == 1
    assert dsn[0].t >= bounced[0].t + 2.0
