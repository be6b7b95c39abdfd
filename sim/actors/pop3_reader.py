"""A mail client that reads its mailboxes over POP3 (``pop3-reader``).

Seed 001's client, its own server offline, reads the temporary POP3
mailboxes the provider set up.  Every ``every`` seconds, for each account:
connect, USER/PASS, STAT, RETR and DELE each message, QUIT (RFC 1939); the
deletions take effect at QUIT, so a message is logged as read
(``MailRetrieved``) only once the server confirmed the QUIT.  A failed
login or connection is tried again at the next round: the mailboxes may not
exist yet, or no longer.
"""
from __future__ import annotations

import asyncio
from typing import Any

from mta.delivery.client import connect_outcome
from mta.queue.message import message_id
from sim.events import MailRetrieved
from sim.scenario.traffic import Pop3Reader


class _Refused(Exception):
    """The server answered -ERR (or nothing usable)."""


class Pop3ReaderActor:
    """Runs one ``pop3-reader`` entry of a scenario."""

    def __init__(self, spec: Pop3Reader, ctx: Any, *, addresses: dict[str, str],
                 stop: float) -> None:
        self.spec = spec
        self.ctx = ctx
        self.server_ip = addresses[spec.server]
        self.stop = spec.stop if spec.stop is not None else stop
        self.outcomes: list[str] = []     # per session: "read N", a refusal or a connect outcome

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        t = self.spec.start
        while t < self.stop:
            await asyncio.sleep(max(t - loop.time(), 0.0))
            for user, password in self.spec.users.items():
                self.outcomes.append(await self.read(user, password))
            t += self.spec.every

    async def read(self, user: str, password: str) -> str:
        """One session for ``user``: read and delete everything; the outcome."""
        timeout = self.spec.timeout
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.server_ip, self.spec.port), timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            return connect_outcome(exc)

        async def line() -> bytes:
            return await asyncio.wait_for(reader.readline(), timeout)

        async def command(text: str) -> str:
            writer.write(text.encode("utf-8") + b"\r\n")
            reply = (await line()).decode("utf-8", "replace").strip()
            if not reply.startswith("+OK"):
                raise _Refused(reply)
            return reply

        try:
            if not (await line()).startswith(b"+OK"):
                return "refused"
            await command(f"USER {user}")
            await command(f"PASS {password}")
            count = int((await command("STAT")).split()[1])
            read = []
            for n in range(1, count + 1):
                await command(f"RETR {n}")
                body = bytearray()
                while (raw := await line()) not in (b".\r\n", b".\n", b""):
                    body += raw[1:] if raw.startswith(b"..") else raw   # RFC 1939 byte-stuffing
                await command(f"DELE {n}")
                read.append(bytes(body))
            await command("QUIT")
        except _Refused as exc:
            return f"refused: {exc}"
        except (OSError, asyncio.TimeoutError) as exc:
            return connect_outcome(exc)
        except (ValueError, IndexError):
            return "refused: unreadable STAT reply"
        finally:
            writer.close()
        for data in read:
            self.ctx.sink.emit(MailRetrieved(
                t=self.ctx.now(), host=self.ctx.hostname, server=self.spec.server, user=user,
                mailbox=user.lower(), trace=message_id(data) or "", size=len(data)))
        return f"read {len(read)}"
