"""Final delivery into local mailboxes (the last hop of a primary MX).

The simplest real thing: an in-memory map of recipient to delivered
messages.  The queue manager calls :meth:`Mailboxes.deliver` for recipients
of its ``local_domains`` and records ``DeliveredToMailbox``.
"""
from __future__ import annotations


class Mailboxes:
    """In-memory mailboxes keyed by the lower-cased recipient address."""

    def __init__(self) -> None:
        self.boxes: dict[str, list[bytes]] = {}

    def deliver(self, rcpt: str, data: bytes) -> str:
        """Store ``data`` for ``rcpt``; return the mailbox's name."""
        name = rcpt.lower()
        self.boxes.setdefault(name, []).append(data)
        return name

    def count(self, rcpt: str | None = None) -> int:
        if rcpt is not None:
            return len(self.boxes.get(rcpt.lower(), []))
        return sum(len(v) for v in self.boxes.values())
