"""Greylisting inside the real receiving server: simulated (virtual time)
and on real loopback with the SQLite store surviving a restart."""
from __future__ import annotations

import asyncio

import aiosmtplib

from mta.context import HostContext
from mta.events import PolicyDecision, SmtpReply
from mta.events.sinks import MemorySink
from mta.mailbox import MailboxStore
from mta.policy.greylist import GreylistStage
from mta.policy.greylist_store import MemoryGreylistStore, SqliteGreylistStore
from mta.roles import PrimaryMx
from mta.smtp.server import SmtpServer
from sim.world.core import World

MX_IP, SENDER_IP, SPAMMER_IP = "192.0.2.10", "198.51.100.25", "203.0.113.9"
BODY = b"Subject: hello\r\n\r\nhi\r\n"


def greylisting_mx(ctx: HostContext, store) -> SmtpServer:
    """A primary MX whose chain has greylisting after relay control."""
    stage = GreylistStage(store=store, clock=ctx.now, hostname=ctx.hostname)
    role = PrimaryMx(hostname=ctx.hostname, local_domains=("example.net",),
                     after_relay=(stage,))
    return role.build_server(ctx, MailboxStore(ctx))


async def send(host: str, port: int, helo: str, sender: str, rcpt: str) -> int:
    """One SMTP transaction; the RCPT reply code (250 when it went through)."""
    c = aiosmtplib.SMTP(hostname=host, port=port, local_hostname=helo, timeout=60)
    await c.connect()
    try:
        await c.sendmail(sender, [rcpt], BODY)
        return 250
    except aiosmtplib.SMTPRecipientsRefused as exc:
        return exc.recipients[0].code
    finally:
        await c.quit()


def test_sender_that_retries_after_5_minutes_gets_through_spammer_never(world):
    mx = world.add_host("mx.example.net", MX_IP)
    legit = world.add_host("mail.sender.example", SENDER_IP)
    bot = world.add_host("bot.spam.example", SPAMMER_IP)
    server = greylisting_mx(mx.ctx, MemoryGreylistStore())
    world.run_until_complete(mx, server.start(None, 25))

    async def retrying_sender():
        loop = asyncio.get_running_loop()
        codes = []
        while True:
            codes.append((loop.time(), await send(MX_IP, 25, "mail.sender.example",
                                                   "alice@sender.example", "bob@example.net")))
            if codes[-1][1] == 250:
                return codes
            await asyncio.sleep(300)          # Postfix's first retry: 5 minutes

    async def spammer():
        # Fire and forget: a new recipient every minute, never a retry.
        codes = []
        for n in range(50):
            codes.append(await send(MX_IP, 25, "bot.spam.example", "x@spam.example",
                                    f"user{n}@example.net"))
            await asyncio.sleep(60)
        return codes

    world.spawn(bot, spammer())
    codes = world.run_until_complete(legit, retrying_sender())
    assert [c for _, c in codes] == [450, 250]
    assert codes[1][0] - codes[0][0] >= 300
    world.run(until=world.env.now + 3 * 86400)

    got = server.sink.messages("bob@example.net")
    assert len(got) == 1 and b"X-Greylist: delayed 300 seconds by mxsim-greylist" in got[0].data
    assert not any(server.sink.messages(f"user{n}@example.net") for n in range(50))

    rcpt = [e for e in world.events if isinstance(e, SmtpReply) and e.command == "RCPT"]
    assert {(e.client_ip, e.code, e.stage) for e in rcpt} == {
        (SENDER_IP, 450, "greylist"), (SENDER_IP, 250, "greylist"), (SPAMMER_IP, 450, "greylist")}
    assert sum(1 for e in rcpt if e.client_ip == SPAMMER_IP) == 50
    notes = [e for e in world.events if isinstance(e, PolicyDecision) and e.stage == "greylist"]
    legit_notes = [(e.decision, e.detail) for e in notes if e.client_ip == SENDER_IP]
    trip = "198.51.100.0/alice@sender.example/bob@example.net"
    assert legit_notes == [("greylist", f"reason=new remaining=300 triplet={trip}"),
                           ("pass", f"reason=triplet-found remaining=0 delay=300 awl=1 "
                                    f"triplet={trip}")]
    spam_notes = [e for e in notes if e.client_ip == SPAMMER_IP]
    assert len(spam_notes) == 50            # every decision is on the record
    assert all(e.decision == "greylist" and e.conn and e.host == "mx.example.net"
               and "reason=new remaining=300 triplet=203.0.113.0/x@spam.example/user" in e.detail
               for e in spam_notes)


def test_sqlite_store_keeps_triplets_across_a_server_restart_on_loopback(tmp_path):
    path = str(tmp_path / "greylist.db")
    now = [1_800_000_000.0]                   # Unix time, advanced by hand

    async def session(expect_store_state: bool) -> tuple[int, MemorySink]:
        sink = MemorySink()
        ctx = HostContext("mx.example.net", sink=sink, clock=lambda: now[0])
        store = SqliteGreylistStore(path)
        if expect_store_state:
            assert store.counts() == (1, 0)
        server = greylisting_mx(ctx, store)
        srv = await server.start("127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        try:
            code = await send("127.0.0.1", port, "mail.sender.example",
                              "alice@sender.example", "bob@example.net")
        finally:
            await server.stop()
            for _ in range(5):
                await asyncio.sleep(0)
            store.close()
        return code, sink

    first, sink1 = asyncio.run(session(False))
    now[0] += 301                             # a restart later, past the delay
    second, sink2 = asyncio.run(session(True))
    assert (first, second) == (450, 250)
    d1 = [e.decision for e in sink1.events if isinstance(e, PolicyDecision)]
    d2 = [e.detail for e in sink2.events if isinstance(e, PolicyDecision)]
    assert d1 == ["greylist"]
    assert d2 == ["reason=triplet-found remaining=0 delay=301 awl=1 "
                  "triplet=127.0.0.0/alice@sender.example/bob@example.net"]


def test_the_queues_postfix_retry_gets_through_and_the_delay_shows_in_latency(world, zones):
    """The project's own queue and delivery client (Postfix retry preset)
    against a greylisting MX: deferred at RCPT, relayed on the first retry."""
    from mta import events as ev
    from mta.delivery.client import DeliveryConfig
    from mta.queue.manager import QueueManager
    from mta.queue.policy import QueueConfig
    from mta.queue.store import MemoryStore
    from sim.world.disk import SimulatedDisk

    mx = world.add_host("mx1.example.net", "192.0.2.10")
    sender = world.add_host("mail.sender.example", SENDER_IP)
    world.set_zones(zones)
    server = greylisting_mx(mx.ctx, MemoryGreylistStore())
    world.run_until_complete(mx, server.start(None, 25))
    queue = QueueManager(sender.ctx, MemoryStore(SimulatedDisk()), QueueConfig(), DeliveryConfig())
    world.run_until_complete(sender, queue.start())
    world.run_until_complete(sender, queue.submit("alice@sender.example", ["bob@example.net"], BODY))
    world.run(until=3600)

    deferred = [e for e in world.events if isinstance(e, ev.Deferred)]
    relayed = [e for e in world.events if isinstance(e, ev.Relayed)]
    assert [(e.code, "Greylisted" in e.text) for e in deferred] == [(450, True)]
    assert len(relayed) == 1 and relayed[0].dest_host == "mx1.example.net"
    queued = next(e for e in world.events if isinstance(e, ev.Queued))
    latency = relayed[0].t - queued.t
    assert 300 <= latency <= 300 + 300 + 60      # Postfix: 300 s backoff, next 300 s queue scan
    assert len(server.sink.messages("bob@example.net")) == 1
