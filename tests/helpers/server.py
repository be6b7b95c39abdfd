"""Shared helpers for the receiving-server tests (no tests here).

``run_loopback`` starts a real server (a role's, or any SmtpServer) on
127.0.0.1 with an ephemeral port on a fresh asyncio loop, runs a client
coroutine against it, stops it and returns what the client returned plus
the event log.  Blocking clients (smtplib, raw sockets) run in a thread
through ``asyncio.to_thread``.
"""
from __future__ import annotations

import asyncio
import socket
from typing import Any, Awaitable, Callable

from mta.context import HostContext
from mta.events import MemorySink, SmtpReply
from mta.mailbox import MailboxStore
from mta.roles import CustomerMailServer, ReceivingRole
from mta.smtp.server import SmtpServer

Client = Callable[[int, SmtpServer], Awaitable[Any]]


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


def replies(sink: MemorySink, command: str | None = None) -> list[SmtpReply]:
    return [e for e in sink.events if isinstance(e, SmtpReply)
            and (command is None or e.command == command)]


class RawClient:
    """A blocking line-oriented client for hostile input (bytes in, reply
    lines out).  Multi-line replies are read whole."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
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
