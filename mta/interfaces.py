"""What the receiving side needs from the rest of a host.

The SMTP server hands accepted messages to a :class:`MessageSink` (the queue
of mta/queue, or :class:`mta.mailbox.MailboxStore` for final delivery), and
ETRN and finger ask a :class:`ReleaseTarget` (the queue) to start delivery
of held mail.  Both are Protocols: the server never imports the queue.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class MessageSink(Protocol):
    """Where the server hands an accepted message."""

    async def accept(self, *, conn: str, client_ip: str, helo: str, mail_from: str,
                     rcpts: list[str], acknowledged: list[str], data: bytes) -> str:
        """Store durably, emit MessageAccepted (rcpts=acknowledged) and the
        per-recipient events; return the queue ID.  Only after it returns
        does the server answer 250.  ``rcpts`` are the recipients really
        kept; ``acknowledged`` all that got 2xx at RCPT.  Raising makes the
        server answer 451 4.3.0 (the client keeps responsibility)."""
        ...


@runtime_checkable
class ReleaseTarget(Protocol):
    """What ETRN and finger ask of the queue."""

    def held_count(self, domain: str, include_subdomains: bool) -> int:
        """Messages held for ``domain`` (and its subdomains if asked)."""
        ...

    def release(self, domain: str, include_subdomains: bool, trigger: str,
                client_ip: str) -> int:
        """Start delivery of held mail over new connections (as tasks, not
        awaited); return the number of messages started."""
        ...
