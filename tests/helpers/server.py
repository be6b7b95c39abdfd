"""Helpers for the receiving-server tests (no tests here).

* ``run_loopback`` starts a real server (a role's, or any SmtpServer) on
  127.0.0.1 with an ephemeral port on a fresh asyncio loop, runs a client
  coroutine against it, stops it and returns what the client returned plus
  the event log.  Blocking clients (smtplib, raw sockets) run in a thread
  through ``asyncio.to_thread``.
* ``world_with`` builds a simulated world with the role's server and two
  client hosts (a stranger and a feed).
* :class:`SimBed` and :class:`LoopbackBed` run one asyncio client against a
  role's server on either; they are the two backends of the conformance
  suite (tests/test_server_conformance.py).
* ``NON_RELAYING``, ``relay_probe`` and ``probe``: the nmap relay probe and
  the roles that must refuse it.
"""
from __future__ import annotations

import asyncio
import smtplib
import socket
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import aiosmtplib

from mta.addresses import nmap_relay_probes
from mta.context import HostContext
from mta.events import SmtpReply
from mta.events.base import Event
from mta.events.sinks import MemorySink
from mta.mailbox import MailboxStore
from mta.roles import (BackupMx, CustomerMailServer, IspOutbound, PrimaryMx, QueueingServer,
                       ReceivingRole, RestrictedRelay, SmartHost, SmtpFeed)
from mta.smtp.server import SmtpServer
from sim.world.core import World

Client = Callable[[int, SmtpServer], Awaitable[Any]]

MX_IP, STRANGER_IP, FEED_IP = "192.0.2.10", "203.0.113.9", "198.51.100.7"

NON_RELAYING = {
    "primary_mx": PrimaryMx(hostname="mx1.example.net", local_domains=("example.net",)),
    "backup_mx": BackupMx(hostname="mx2.backup.example", relay_domains=("example.net",),
                          relay_recipients=("alice@example.net",)),
    "queueing_server": QueueingServer(hostname="q.isp.example", relay_domains=("dial.example",)),
    "customer_mail_server": CustomerMailServer(
        hostname="mail.customer.example", local_domains=("customer.example",),
        mailboxes=("bob@customer.example",), trusted_networks=("192.168.0.0/16",)),
    "smart_host": SmartHost(hostname="smtp.isp.example", trusted_networks=("10.0.0.0/8",),
                            users={"cust": "pw"}, allow_auth_relay=True),
    "isp_outbound": IspOutbound(hostname="out.isp.example", trusted_networks=("198.51.100.0/24",),
                                untrusted_networks=("198.51.100.25",)),
    # greylisting on (its default): relay control refuses for good first
    "smtp_feed": SmtpFeed(hostname="feed.provider.example", relay_domains=("client.example",)),
    "relay": RestrictedRelay(hostname="relay.provider.example", users={"dan": "pw"},
                             allow_auth_relay=True, blocked_attachments=(".exe",)),
}


def build_server(role: ReceivingRole, ctx: HostContext, release: Any = None) -> SmtpServer:
    """A role's server with a real sink: its mailboxes for a customer mail
    server, otherwise a MailboxStore that files every recipient (these
    tests are about the receiving side, not about onward delivery)."""
    store = role.build_store(ctx) if isinstance(role, CustomerMailServer) else MailboxStore(ctx)
    return role.build_server(ctx, store, release=release)


async def _main(make: Callable[[HostContext], SmtpServer], client: Client,
                hostname: str) -> tuple[Any, MemorySink, SmtpServer]:
    sink = MemorySink()
    ctx = HostContext(hostname, sink=sink)
    server = make(ctx)
    srv = await server.start("127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        result = await client(port, server)
    finally:
        await server.stop()
        for _ in range(5):          # let connection_lost callbacks run
            await asyncio.sleep(0)
    return result, sink, server


def run_loopback(make: Callable[[HostContext], SmtpServer] | ReceivingRole, client: Client,
                 hostname: str = "mx.example.net") -> tuple[Any, MemorySink, SmtpServer]:
    if isinstance(make, ReceivingRole):
        role = make
        make = lambda ctx: build_server(role, ctx)  # noqa: E731
        hostname = role.hostname
    return asyncio.run(_main(make, client, hostname))


def replies(events: MemorySink | list[Event], command: str | None = None) -> list[SmtpReply]:
    """The SmtpReply events (of ``command``) of a sink or an event list."""
    evs = events.events if isinstance(events, MemorySink) else events
    return [e for e in evs if isinstance(e, SmtpReply)
            and (command is None or e.command == command)]


def world_with(role: ReceivingRole, *, seed: int = 3, zones: str | None = None):
    """A world with ``role``'s server listening on port 25 of MX_IP, and
    two client hosts: ``bot.spam.example`` (STRANGER_IP) and
    ``feed.isp.example`` (FEED_IP).  Returns (world, mx, stranger, feed, server)."""
    world = World(seed=seed, scenario="receiving")
    mx = world.add_host(role.hostname, MX_IP)
    stranger = world.add_host("bot.spam.example", STRANGER_IP)
    feed = world.add_host("feed.isp.example", FEED_IP)
    if zones:
        world.set_zones(zones)
    server = build_server(role, mx.ctx)
    world.run_until_complete(mx, server.start(None, 25))
    return world, mx, stranger, feed, server


@dataclass(frozen=True)
class Peer:
    """Where a bed's client connects from and to."""

    ip: str                              # the client's own address
    server: str                          # the server's address
    port: int
    local_addr: tuple[str, int] | None   # bind to this (loopback strangers)

    async def open(self) -> "LineClient":
        reader, writer = await asyncio.open_connection(self.server, self.port,
                                                       local_addr=self.local_addr)
        return LineClient(reader, writer)

    def smtp(self, helo: str = "client.example.org") -> aiosmtplib.SMTP:
        return aiosmtplib.SMTP(hostname=self.server, port=self.port, local_hostname=helo,
                               timeout=60, source_address=self.local_addr,
                               start_tls=False, use_tls=False)


class LineClient:
    """An asyncio client for exact bytes: ``send`` and read whole replies."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def reply(self) -> tuple[int, str]:
        lines = []
        while True:
            line = await self.reader.readline()
            if not line.endswith(b"\r\n"):
                raise ConnectionError(f"closed; partial {line!r}, got {lines}")
            lines.append(line[:-2].decode("ascii", "replace"))
            if len(line) < 6 or line[3:4] != b"-":
                return int(lines[-1][:3]), "\n".join(x[4:] for x in lines)

    async def command(self, data: bytes) -> tuple[int, str]:
        self.send(data + b"\r\n")
        return await self.reply()

    async def closed(self) -> bool:
        """True when the server has closed the connection (EOF)."""
        return await self.reader.read() == b""

    def close(self) -> None:
        self.writer.close()


@dataclass
class Run:
    """What a bed run gives: the client's result, the log, the server."""

    result: Any
    events: list[Event]
    server: SmtpServer
    elapsed: float | None = None         # loop time the client took (simulated only)


class SimBed:
    """Runs a client on the simulated world (virtual time, simulated network)."""

    idle_timeout = 300.0
    stranger_ip, feed_ip = STRANGER_IP, FEED_IP

    def run(self, role: ReceivingRole, client: Callable[[Peer], Awaitable[Any]],
            peer_ip: str = FEED_IP) -> Run:
        world, mx, stranger, feed, server = world_with(role)
        host = stranger if peer_ip == STRANGER_IP else feed
        t0 = world.now()
        result = world.run_until_complete(host, client(Peer(peer_ip, MX_IP, 25, None)))
        elapsed = world.now() - t0
        world.run(until=world.now() + 1)     # let the closes be logged
        return Run(result, list(world.events), server, elapsed)


class LoopbackBed:
    """Runs a client over real sockets on 127.0.0.0/8 with the asyncio loop."""

    idle_timeout = 0.5                   # real seconds: keep the suite fast
    stranger_ip, feed_ip = "127.0.0.2", "127.0.0.1"

    def run(self, role: ReceivingRole, client: Callable[[Peer], Awaitable[Any]],
            peer_ip: str = "127.0.0.1") -> Run:
        async def go(port: int, server: SmtpServer) -> Any:
            return await client(Peer(peer_ip, "127.0.0.1", port, (peer_ip, 0)))
        result, sink, server = run_loopback(role, go)
        return Run(result, list(sink.events), server)


async def relay_probe(peer: Peer, srv: str) -> list[int]:
    """nmap smtp-open-relay with aiosmtplib: RSET/MAIL/RCPT for each of 16 pairs."""
    c = peer.smtp("probe.nmap.example")
    await c.connect()
    codes = []
    for sender, rcpt in nmap_relay_probes(srv, peer.ip):
        await c.rset()
        await c.execute_command(b"MAIL", b"FROM:" + sender.encode())
        codes.append((await c.execute_command(b"RCPT", b"TO:" + rcpt.encode())).code)
    await c.quit()
    return codes


def probe(port: int, srv: str, ip: str = "127.0.0.1", helo: str = "probe.nmap.example") -> list[int]:
    """nmap smtp-open-relay with smtplib: EHLO, then RSET/MAIL/RCPT for each of 16 pairs."""
    s = smtplib.SMTP("127.0.0.1", port, local_hostname=helo, timeout=10)
    s.ehlo()
    codes = []
    for sender, rcpt in nmap_relay_probes(srv, ip):
        s.rset()
        s.docmd("MAIL", "FROM:" + sender)
        codes.append(s.docmd("RCPT", "TO:" + rcpt)[0])
    s.quit()
    return codes


def run_probe(role: ReceivingRole):
    """The smtplib probe against ``role`` on loopback."""
    async def go(port, server):
        return await asyncio.to_thread(probe, port, role.hostname)
    return run_loopback(role, go)


class RawClient:
    """A blocking line-oriented client for hostile input (bytes in, reply
    lines out).  Multi-line replies are read whole."""

    def __init__(self, port: int, timeout: float = 10.0,
                 source: tuple[str, int] | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                             source_address=source)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> tuple[int, str]:
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError(f"closed; partial {self.buf!r}, got {lines}")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode("ascii", "replace"))
            if len(line) < 4 or line[3:4] != b"-":
                return int(lines[-1][:3]), "\n".join(x[4:] for x in lines)

    def closed(self) -> bool:
        """True when the server has closed the connection (EOF)."""
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, OSError):
            return True

    def close(self) -> None:
        self.sock.close()
