"""Final delivery: a host's mailboxes, in memory.

:class:`MailboxStore` is the one mailbox store.  A queue files the mail of
its ``local_domains`` with :meth:`MailboxStore.file` (the last hop of a
primary MX; the queue records ``DeliveredToMailbox``).  It is also a
:class:`mta.interfaces.MessageSink`: the SMTP server of a customer mail
server hands it each accepted message, and it files one copy per kept
recipient into that recipient's mailbox.
It reports :class:`~mta.events.MessageAccepted` (with every recipient the
client was told was accepted) and then one
:class:`~mta.events.DeliveredToMailbox` per recipient it really filed, so
that recipients dropped silently on the way show up as missing in the
``conservation`` check.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from mta.context import HostContext
from mta.events import DeliveredToMailbox, MessageAccepted
from mta.queue.message import ensure_message_id


class UnknownMailbox(LookupError):
    """A recipient has no mailbox here (policy should have refused it)."""


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One copy of a message in one mailbox."""

    msg: str
    trace: str
    mail_from: str
    rcpt: str
    data: bytes


class MailboxStore:
    """Mailboxes of one host.

    ``mailboxes``: the addresses that have a mailbox (lower-case); ``None``
    files every recipient under its own address.  ``aliases`` maps an
    address (or a bare ``postmaster``) to the mailbox that receives it.
    """

    def __init__(self, ctx: HostContext, mailboxes: Iterable[str] | None = None,
                 aliases: dict[str, str] | None = None) -> None:
        self.ctx = ctx
        self.known = None if mailboxes is None else {m.lower() for m in mailboxes}
        self.aliases = {k.lower(): v.lower() for k, v in (aliases or {}).items()}
        self.boxes: dict[str, list[StoredMessage]] = {}
        if self.known is not None:
            for m in sorted(self.known):
                self.boxes[m] = []

    def mailbox_for(self, rcpt: str) -> str:
        """The mailbox that receives ``rcpt``; raises UnknownMailbox."""
        r = rcpt.lower()
        box = self.aliases.get(r, r)
        if self.known is not None and box not in self.known:
            raise UnknownMailbox(rcpt)
        return box

    def file(self, msg: str, trace: str, mail_from: str, rcpt: str, data: bytes) -> str:
        """File one copy of ``data`` for ``rcpt``; return the mailbox's name
        (raises UnknownMailbox).  Reports nothing: the caller records it."""
        box = self.mailbox_for(rcpt)
        self.boxes.setdefault(box, []).append(
            StoredMessage(msg=msg, trace=trace, mail_from=mail_from, rcpt=rcpt, data=data))
        return box

    def count(self, mailbox: str | None = None) -> int:
        """Messages in ``mailbox``, or in every mailbox."""
        if mailbox is not None:
            return len(self.boxes.get(mailbox.lower(), []))
        return sum(len(v) for v in self.boxes.values())

    def messages(self, mailbox: str) -> list[StoredMessage]:
        """What ``mailbox`` holds, in arrival order."""
        return list(self.boxes.get(mailbox.lower(), []))

    async def accept(self, *, conn: str, client_ip: str, helo: str, mail_from: str,
                     rcpts: list[str], acknowledged: list[str], data: bytes) -> str:
        """File ``data`` for every kept recipient; return the message ID."""
        # Resolve every mailbox before reporting anything: a refusal must
        # leave no trace of acceptance (the server then answers 451).
        targets = [(r, self.mailbox_for(r)) for r in rcpts]
        msg = self.ctx.next_id("m")
        # Same trace rule as the queue: the Message-ID, added when missing.
        data, trace = ensure_message_id(data, f"{msg.rpartition('/')[2]}@{self.ctx.hostname}")
        now = self.ctx.now()
        host = self.ctx.hostname
        self.ctx.sink.emit(MessageAccepted(
            t=now, host=host, msg=msg, trace=trace, conn=conn, client_ip=client_ip,
            helo=helo, mail_from=mail_from, rcpts=tuple(acknowledged), size=len(data)))
        for rcpt, box in targets:
            self.boxes.setdefault(box, []).append(
                StoredMessage(msg=msg, trace=trace, mail_from=mail_from, rcpt=rcpt, data=data))
            self.ctx.sink.emit(DeliveredToMailbox(t=now, host=host, msg=msg, trace=trace,
                                                  rcpt=rcpt, mailbox=box))
        return msg
