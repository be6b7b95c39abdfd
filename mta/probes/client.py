"""The probes' only I/O: a line-level SMTP client on asyncio streams.

Probes need what a mail client library hides: the exact reply to a command
sent out of order, several commands in one write (PIPELINING), a silent
wait until the server gives up on an idle client.  :class:`ProbeClient`
sends lines and reads replies, nothing more, and keeps a transcript
(``C: ...`` / ``S: ...``) that findings quote as evidence.

A target that cannot be reached, does not speak SMTP, stops answering or
closes the connection in the middle of a dialogue raises
:class:`TargetError` (``mxsim probe`` exits 2 on it): a probe cannot judge
a server it could not talk to.
"""
from __future__ import annotations

import asyncio
import ssl

from mta.probes.findings import REPLY_LINE, Reply

#: Seconds to wait for a connection, and for each reply.
CONNECT_TIMEOUT = 10.0
REPLY_TIMEOUT = 30.0
#: A reply longer than this many lines is not an SMTP server's.
MAX_REPLY_LINES = 1000
#: Seconds a TLS handshake may take.
HANDSHAKE_TIMEOUT = 30.0


class TargetError(Exception):
    """The target could not be probed (unreachable, not SMTP, went away)."""


class HandshakeError(Exception):
    """The server answered STARTTLS with 220 and the TLS handshake failed
    (a finding about the server, not a reason to stop probing)."""


class ProbeClient:
    """One connection to the target (see the module docstring)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 where: str, reply_timeout: float = REPLY_TIMEOUT) -> None:
        self.reader = reader
        self.writer = writer
        self.where = where
        self.reply_timeout = reply_timeout
        self.transcript: list[str] = []
        self.tls: str | None = None        # "TLSv1.3 TLS_AES_256_GCM_SHA384" once upgraded

    @classmethod
    async def connect(cls, host: str, port: int, *, timeout: float = CONNECT_TIMEOUT,
                      reply_timeout: float = REPLY_TIMEOUT) -> tuple["ProbeClient", Reply]:
        """Connect and read the greeting; returns the client and the greeting."""
        where = f"{host}:{port}"
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, limit=1 << 20), timeout)
        except asyncio.TimeoutError:
            raise TargetError(f"{where}: no connection within {timeout:g} s") from None
        except OSError as exc:
            raise TargetError(f"{where}: cannot connect: {exc.strerror or exc}") from None
        client = cls(reader, writer, where, reply_timeout)
        try:
            greeting = await client.read_reply("the greeting")
        except TargetError:
            await client.close(quit=False)
            raise
        return client, greeting

    async def read_reply(self, what: str) -> Reply:
        """Read one (possibly multi-line) reply to ``what``."""
        code, lines = None, []
        while True:
            try:
                raw = await asyncio.wait_for(self.reader.readline(), self.reply_timeout)
            except asyncio.TimeoutError:
                raise TargetError(f"{self.where}: no reply to {what} within "
                                  f"{self.reply_timeout:g} s") from None
            except (OSError, ValueError) as exc:
                raise TargetError(f"{self.where}: connection lost waiting for the reply "
                                  f"to {what}: {exc}") from None
            if not raw:
                raise TargetError(f"{self.where}: the server closed the connection instead "
                                  f"of answering {what}")
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.transcript.append(f"S: {line}")
            m = REPLY_LINE.match(line)
            if m is None or (code is not None and int(m.group(1)) != code):
                raise TargetError(f"{self.where}: not an SMTP reply to {what}: {line[:80]!r}")
            code = int(m.group(1))
            lines.append(line[4:])
            if m.group(2) != "-":
                return Reply(code, tuple(lines))
            if len(lines) > MAX_REPLY_LINES:
                raise TargetError(f"{self.where}: a reply to {what} of over "
                                  f"{MAX_REPLY_LINES} lines")

    async def command(self, line: str) -> Reply:
        """Send one command line and read its reply."""
        await self.send(line)
        return await self.read_reply(line.split(" ", 1)[0].upper())

    async def starttls(self, context: ssl.SSLContext, server_hostname: str | None) -> Reply:
        """RFC 3207: STARTTLS, and on 220 the handshake; returns the reply.
        Raises :class:`HandshakeError` when the handshake fails (the
        connection is unusable then: close it with ``quit=False``)."""
        reply = await self.command("STARTTLS")
        if reply.code != 220:
            return reply
        try:
            await asyncio.wait_for(self.writer.start_tls(context, server_hostname=server_hostname,
                                                         ssl_handshake_timeout=HANDSHAKE_TIMEOUT),
                                   HANDSHAKE_TIMEOUT + 1)
        except asyncio.TimeoutError:
            raise HandshakeError(f"no TLS handshake within {HANDSHAKE_TIMEOUT:g} s") from None
        except (ssl.SSLError, OSError, ConnectionError) as exc:
            raise HandshakeError(getattr(exc, "reason", None) or str(exc) or
                                 type(exc).__name__) from None
        obj = self.writer.get_extra_info("ssl_object")
        self.tls = f"{obj.version()} {obj.cipher()[0]}" if obj is not None else "TLS"
        self.transcript.append(f"-- TLS: {self.tls}")
        return reply

    async def send(self, *lines: str) -> None:
        """Send ``lines`` in one write (several: a pipelined group)."""
        for line in lines:
            self.transcript.append(f"C: {line}")
        self.writer.write("".join(f"{line}\r\n" for line in lines).encode("utf-8"))
        try:
            await self.writer.drain()
        except OSError as exc:
            raise TargetError(f"{self.where}: connection lost sending "
                              f"{lines[0].split(' ', 1)[0]}: {exc}") from None

    async def pipeline(self, lines: list[str]) -> list[Reply]:
        """Send ``lines`` in one write, then read one reply per line."""
        await self.send(*lines)
        return [await self.read_reply(line.split(" ", 1)[0].upper()) for line in lines]

    async def idle_until_closed(self, limit: float) -> tuple[float | None, Reply | None]:
        """Say nothing for up to ``limit`` seconds.  Returns the seconds after
        which the server closed (None: still open) and what it said first."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        said = None
        while True:
            left = limit - (loop.time() - start)
            if left <= 0:
                return None, said
            try:
                raw = await asyncio.wait_for(self.reader.readline(), left)
            except asyncio.TimeoutError:
                return None, said
            except OSError:
                return loop.time() - start, said
            if not raw:
                return loop.time() - start, said
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.transcript.append(f"S: {line}")
            m = REPLY_LINE.match(line)
            if m and said is None:
                said = Reply(int(m.group(1)), (line[4:],))

    async def close(self, quit: bool = True) -> None:
        """QUIT (best effort) and close."""
        if quit and not self.writer.is_closing():
            try:
                await self.send("QUIT")
                await asyncio.wait_for(self.reader.read(1024), 2.0)
            except (TargetError, OSError, asyncio.TimeoutError):
                pass
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass
