"""Shared POP3 test helpers: a filled mailbox store, a live server runner
for blocking clients (poplib, raw sockets), and a small asyncio client that
runs on the simulated loop."""
from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from mta.context import HostContext
from mta.events.sinks import MemorySink
from mta.mailbox import MailboxStore
from mta.pop3 import MailboxStoreDrops, Pop3Server

HOST = "pop.customer.example"
BOB, ANN = "bob@customer.example", "ann@customer.example"
USERS = {"bob": "s3cret pass", "ann": "ann-pw"}
MAILBOXES = {"bob": BOB, "ann": ANN}

#: Bob's mail: a line starting with a dot (dot-stuffing), a bare-LF body,
#: and a longer body for TOP.
MESSAGES = [
    b"From: a@sender.example\r\nSubject: one\r\n\r\nhello\r\n.hidden dot line\r\n..two dots\r\n",
    b"From: b@sender.example\nSubject: two\n\nbare LF body\nsecond line\n",
    b"From: c@sender.example\r\nSubject: three\r\n\r\n" + b"".join(
        b"body line %d\r\n" % i for i in range(1, 21)),
]


async def fill(store: MailboxStore, rcpt: str = BOB, messages: list[bytes] = MESSAGES) -> None:
    """Deliver ``messages`` into ``rcpt``'s mailbox the way the SMTP server does."""
    for i, data in enumerate(messages):
        await store.accept(conn=f"c{i}", client_ip="198.51.100.25", helo="mail.sender.example",
                           mail_from="a@sender.example", rcpts=[rcpt], acknowledged=[rcpt],
                           data=data)


def make_server(ctx: HostContext, **kw: Any) -> tuple[Pop3Server, MailboxStore]:
    store = MailboxStore(ctx, mailboxes=[BOB, ANN])
    server = Pop3Server(ctx, MailboxStoreDrops(store), kw.pop("users", USERS),
                        mailboxes=kw.pop("mailboxes", MAILBOXES), **kw)
    return server, store


Client = Callable[[int, Pop3Server, MailboxStore], Awaitable[Any]]


def run_live(client: Client, **kw: Any) -> tuple[Any, MemorySink, MailboxStore]:
    """Start a filled server on 127.0.0.1 (a free port) on a real loop, run
    ``client(port, server, store)`` (blocking clients go through
    ``asyncio.to_thread``), stop, and return its result, the events and the store."""
    async def main():
        sink = MemorySink()
        ctx = HostContext(HOST, sink=sink)
        server, store = make_server(ctx, **kw)
        await fill(store)
        srv = await server.start("127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        try:
            result = await client(port, server, store)
        finally:
            await server.stop()
            for _ in range(5):
                await asyncio.sleep(0)
        return result, sink, store
    return asyncio.run(main())


class AsyncPop3:
    """A minimal POP3 client on asyncio streams (so it runs simulated)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.greeting = b""

    @classmethod
    async def connect(cls, host: str, port: int = 110) -> "AsyncPop3":
        r, w = await asyncio.open_connection(host, port)
        c = cls(r, w)
        c.greeting = (await r.readline()).rstrip(b"\r\n")
        return c

    async def cmd(self, line: str | bytes) -> bytes:
        """Send one line, return the status line."""
        self.writer.write((line.encode() if isinstance(line, str) else line) + b"\r\n")
        return (await self.reader.readline()).rstrip(b"\r\n")

    async def multi(self, line: str) -> tuple[bytes, list[bytes]]:
        """A multi-line command: the status line and the unstuffed lines."""
        status = await self.cmd(line)
        lines: list[bytes] = []
        if status.startswith(b"+OK"):
            while (ln := (await self.reader.readline()).rstrip(b"\r\n")) != b".":
                lines.append(ln[1:] if ln.startswith(b"..") else ln)
        return status, lines

    async def close(self) -> bytes:
        """Whatever the server still sends, until it closes."""
        rest = await self.reader.read()
        self.writer.close()
        return rest
