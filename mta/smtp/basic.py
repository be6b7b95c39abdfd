"""The smallest real mail pair: an aiosmtpd sink and an aiosmtplib sender.

Both are ordinary asyncio code that never mentions the simulation; they are
the parity probe (the same code gives the same SMTP transcript on real
loopback sockets and on the simulated loop), the demo's components, and the
workload of ``benchmarks/sessions.py``.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class ReceivedMessage:
    """One message as the sink accepted it."""

    peer: str
    mail_from: str
    rcpts: tuple[str, ...]
    data: bytes
    at: float


class RecordingSink:
    """aiosmtpd handler that keeps every accepted message in memory."""

    def __init__(self) -> None:
        self.messages: list[ReceivedMessage] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        loop = asyncio.get_running_loop()
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        self.messages.append(ReceivedMessage(
            peer=peer, mail_from=envelope.mail_from or "", rcpts=tuple(envelope.rcpt_tos),
            data=bytes(envelope.content or b""), at=loop.time()))
        return "250 2.0.0 OK: queued"


async def serve_sink(hostname: str, port: int, host: str | None = None,
                     handler: RecordingSink | None = None) -> tuple[asyncio.AbstractServer, RecordingSink]:
    """Serve a :class:`RecordingSink` on ``host:port`` with the running loop.

    ``hostname`` is passed explicitly: aiosmtpd would otherwise call
    ``socket.getfqdn()`` (DESIGN.md pitfall 1).
    """
    handler = handler or RecordingSink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, hostname=hostname), host=host, port=port)
    return server, handler


async def send_message(server_host: str, port: int, local_hostname: str, mail_from: str,
                       rcpts: list[str], data: bytes, timeout: float = 60.0) -> list[tuple[str, int, str]]:
    """One complete session (connect, EHLO, MAIL, RCPT..., DATA, QUIT).

    Returns the transcript as ``(command, code, text)`` triples, as the
    client saw the replies.  Raises aiosmtplib/OS errors like any client.
    """
    transcript: list[tuple[str, int, str]] = []
    client = aiosmtplib.SMTP(hostname=server_host, port=port, local_hostname=local_hostname,
                             timeout=timeout, start_tls=False, use_tls=False)
    reply = await client.connect()
    transcript.append(("CONNECT", reply.code, reply.message))
    reply = await client.ehlo()
    transcript.append(("EHLO", reply.code, reply.message))
    reply = await client.mail(mail_from)
    transcript.append(("MAIL", reply.code, reply.message))
    for rcpt in rcpts:
        reply = await client.rcpt(rcpt)
        transcript.append(("RCPT", reply.code, reply.message))
    reply = await client.data(data)
    transcript.append(("DATA", reply.code, reply.message))
    reply = await client.quit()
    transcript.append(("QUIT", reply.code, reply.message))
    return transcript
