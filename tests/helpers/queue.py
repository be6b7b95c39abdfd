"""Helpers for the queue, delivery and on-demand tests.

Real aiosmtpd servers as next hops (scripted replies per stage), a world
builder with zone text, and a plain fixed-interval retry schedule that
implements mta.retry.presets's RetrySchedule protocol for tests that are not about
a preset's timeline.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiosmtplib

from aiosmtpd.smtp import SMTP

from mta.context import HostContext
from mta.delivery.client import DeliveryConfig
from mta.delivery.routing import Route
from mta.events.sinks import MemorySink
from mta.mailbox import MailboxStore
from mta.queue.manager import QueueManager
from mta.queue.policy import QueueConfig
from mta.queue.store import MemoryStore
from mta.roles import CustomerMailServer
from mta.smtp.server import SmtpServer
from sim.world.disk import SimulatedDisk

SOA = "@ 3600 IN SOA ns.{o} hostmaster.{o} 1 3600 600 86400 60\n"


def zones(spec: dict[str, list[str]]) -> str:
    """Zone text for several origins: {"b.example": ["@ MX 10 mx", "mx A 192.0.2.2"]}."""
    out = []
    for origin, records in spec.items():
        out.append(f"$ORIGIN {origin}.\n" + SOA.format(o=origin))
        for r in records:
            name, rest = r.split(" ", 1)
            out.append(f"{name} 3600 IN {rest}\n")
    return "".join(out)


@dataclass
class FixedSchedule:
    """Retry every ``interval`` until ``lifetime`` after queueing (tests only)."""

    interval: float = 300.0
    lifetime: float = 3600.0
    name: str = "fixed"
    min_backoff: float = 300.0
    max_backoff: float = 300.0
    delay_warning: float | None = None

    def next_attempt(self, queued_at: float, first_failure: float, now: float, attempts: int):
        nxt = now + self.interval
        return None if nxt > queued_at + self.lifetime else nxt


class Recorder:
    """An aiosmtpd handler that records what it accepts.

    ``mail_reply``/``data_reply`` (a reply string) refuse at that stage;
    ``rcpt_replies`` maps an address to its reply.  Each may be a list, used
    up one reply per transaction (then the default 250).
    """

    def __init__(self, name: str = "sink", *, mail_reply=None, data_reply=None,
                 rcpt_replies=None, delay: float = 0.0) -> None:
        self.name = name
        self.delay = delay          # seconds before answering DATA (a slow next hop)
        self.mail_reply = mail_reply
        self.data_reply = data_reply
        self.rcpt_replies = dict(rcpt_replies or {})
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.sessions = 0
        self.transactions = 0

    @staticmethod
    def _take(reply):
        if isinstance(reply, list):
            return reply.pop(0) if reply else None
        return reply

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        self.sessions += 1
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.transactions += 1
        reply = self._take(self.mail_reply)
        if reply:
            return reply
        envelope.mail_from = address      # "<>" for the null sender (must stay truthy)
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self._take(self.rcpt_replies.get(address))
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        reply = self._take(self.data_reply)
        if reply:
            return reply
        if self.delay:
            await asyncio.sleep(self.delay)
        mail_from = "" if envelope.mail_from == "<>" else envelope.mail_from
        self.messages.append((mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK queued"

    def rcpts(self) -> list[str]:
        return [r for _, rs, _ in self.messages for r in rs]


async def serve(handler, hostname: str, port: int = 25, host: str | None = None):
    """Listen with a real aiosmtpd SMTP protocol on the running loop."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: SMTP(handler, hostname=hostname), host=host, port=port)


def queue_for(host, *, config: QueueConfig | None = None, delivery: DeliveryConfig | None = None,
              disk: SimulatedDisk | None = None, fsync_latency: float = 0.0) -> QueueManager:
    """A QueueManager on a simulated host with a MemoryStore (not started)."""
    store = MemoryStore(disk if disk is not None else SimulatedDisk(), fsync_latency=fsync_latency)
    return QueueManager(host.ctx, store, config or QueueConfig(retry=FixedSchedule()),
                        delivery or DeliveryConfig(connect_timeout=30, command_timeout=60))


@dataclass
class HeldMail:
    """A queueing server's queue holding mail for ``dial.example``, and the
    customer's mail server it releases to, both live on loopback."""

    sink: MemorySink
    ctx: HostContext
    queue: QueueManager
    store: MailboxStore
    customer: SmtpServer


async def held_mail_on_loopback(messages: int) -> HeldMail:
    """Start the customer server on 127.0.0.1 and a queue (on the running
    loop) holding ``messages`` messages for user@dial.example."""
    sink = MemorySink()
    cust_ctx = HostContext("mail.dial.example", sink=sink)
    role = CustomerMailServer(hostname="mail.dial.example", local_domains=("dial.example",),
                              mailboxes=("user@dial.example",))
    store = role.build_store(cust_ctx)
    customer = role.build_server(cust_ctx, store)
    cport = (await customer.start("127.0.0.1", 0)).sockets[0].getsockname()[1]
    ctx = HostContext("q.isp.example", sink=sink)
    queue = QueueManager(ctx, MemoryStore(SimulatedDisk()), QueueConfig(hold_domains=("dial.example",)),
                         DeliveryConfig(routes={"dial.example": Route(("127.0.0.1",), port=cport)}))
    await queue.start()
    for i in range(messages):
        await queue.submit("s@sender.example", ["user@dial.example"], f"Subject: {i}\r\n\r\nx\r\n".encode())
    return HeldMail(sink, ctx, queue, store, customer)


async def wait_for_mailbox(store: MailboxStore, mailbox: str, count: int, tries: int = 200) -> None:
    """Poll (real time, 10 ms steps) until ``mailbox`` holds ``count`` messages."""
    for _ in range(tries):
        if len(store.messages(mailbox)) >= count:
            return
        await asyncio.sleep(0.01)


async def gather_bounded(count: int, limit: int, job) -> None:
    """Run ``job(i)`` for i in range(count), at most ``limit`` at a time."""
    sem = asyncio.Semaphore(limit)

    async def one(i: int) -> None:
        async with sem:
            await job(i)
    await asyncio.gather(*(one(i) for i in range(count)))


async def send_until_acknowledged(relay: dict, i: int, prefix: str, acked: list[str],
                                  killed: asyncio.Event, kill_after: int) -> None:
    """Send message ``i`` to the relay on ``relay["port"]`` (read again on each
    try, so a restarted relay is found) until it answers 250 after DATA,
    re-sending after any failure as a real sender would; record its
    Message-ID in ``acked``, and set ``killed`` (the test's cue to kill the
    relay) once ``kill_after`` messages are acknowledged."""
    mid = f"{prefix}{i}@client.mxsim.test"
    data = (f"Message-ID: <{mid}>\r\nSubject: {i}\r\n\r\n" + "x" * 900 + "\r\n").encode()
    while True:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=relay["port"],
                               local_hostname="client.mxsim.test", timeout=10)
        try:
            await smtp.connect()
            await smtp.sendmail("s@client.mxsim.test", [f"u{i}@dest.mxsim.test"], data)
            acked.append(mid)       # a 250 after DATA: the relay is responsible now
            if len(acked) == kill_after:
                killed.set()
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                pass
            return
        except (aiosmtplib.SMTPException, OSError):
            smtp.close()
            await asyncio.sleep(0.2)
