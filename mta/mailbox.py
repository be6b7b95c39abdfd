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

With a :class:`~mta.maildir.Maildir` (a live host), every copy is written
to disk before :meth:`MailboxStore.file` or :meth:`MailboxStore.accept`
returns, the store starts with what the disk holds, and
:meth:`MailboxStore.delete` removes the files: mailboxes survive a restart.

In memory every body is kept deflated (:class:`Deflated`), one copy shared by
the recipients of one message: a simulated ISP files ~100,000 messages a week
and reads few of them back, so holding them as they arrived was a third of a
run's memory.  ``StoredMessage.data`` gives the bytes back exactly.
"""
from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Collection, Iterable

from mta.context import HostContext
from mta.events import DeliveredToMailbox, MessageAccepted
from mta.queue.message import ensure_message_id

if TYPE_CHECKING:
    from mta.maildir import Maildir


class UnknownMailbox(LookupError):
    """A recipient has no mailbox here (policy should have refused it)."""


# Raw deflate with a 4 KiB window and a small hash table, level 1: the
# state zlib sets up per call is what a 4 KB body costs to compress (the
# default 32 KiB window and memLevel 8 take ~10x longer for the same size).
_WBITS, _MEMLEVEL, _LEVEL = -12, 4, 1


@dataclass(frozen=True, slots=True)
class Deflated:
    """A message body kept deflated; :attr:`data` is the exact bytes."""

    packed: bytes

    @classmethod
    def of(cls, data: bytes) -> "Deflated":
        c = zlib.compressobj(_LEVEL, zlib.DEFLATED, _WBITS, _MEMLEVEL)
        return cls(c.compress(data) + c.flush())

    @property
    def data(self) -> bytes:
        return zlib.decompress(self.packed, _WBITS)


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One copy of a message in one mailbox."""

    msg: str
    trace: str
    mail_from: str
    rcpt: str
    body: Deflated
    name: str = ""          # its file in a Maildir ("" in memory)

    @property
    def data(self) -> bytes:
        """The message as filed."""
        return self.body.data


class MailboxStore:
    """Mailboxes of one host.

    ``mailboxes``: the addresses that have a mailbox (lower-case); ``None``
    files every recipient under its own address.  ``aliases`` maps an
    address (or a bare ``postmaster``) to the mailbox that receives it.
    ``maildir``: keep the mailboxes on disk too (see the module docstring);
    what it holds already is loaded now.
    """

    def __init__(self, ctx: HostContext, mailboxes: Iterable[str] | None = None,
                 aliases: dict[str, str] | None = None, maildir: "Maildir | None" = None) -> None:
        self.ctx = ctx
        self.known = None if mailboxes is None else {m.lower() for m in mailboxes}
        self.aliases = {k.lower(): v.lower() for k, v in (aliases or {}).items()}
        self.maildir = maildir
        self.boxes: dict[str, list[StoredMessage]] = {}
        if self.known is not None:
            for m in sorted(self.known):
                self.boxes[m] = []
        if maildir is not None:
            for box, files in maildir.load().items():
                self.boxes.setdefault(box, []).extend(self._loaded(box, n, d) for n, d in files)

    def _loaded(self, box: str, name: str, data: bytes) -> StoredMessage:
        """A message found on disk: its queue ID from the file name, its
        trace from its Message-ID; the envelope sender is not kept on disk."""
        from mta.maildir import Maildir
        msg = f"{self.ctx.hostname}/{Maildir.queue_id(name) or name}"
        _, trace = ensure_message_id(data, msg)
        return StoredMessage(msg=msg, trace=trace, mail_from="", rcpt=box, body=Deflated.of(data),
                             name=name)

    def _put(self, box: str, stored: StoredMessage, data: bytes | None = None) -> None:
        """Keep one copy (on disk first when there is a Maildir).  ``data``,
        when the caller has it, is the copy's bytes, so a Maildir write does
        not inflate what was just deflated."""
        if self.maildir is not None:
            name = self.maildir.deliver(box, stored.data if data is None else data,
                                        now=self.ctx.now(), msg=stored.msg)
            stored = StoredMessage(stored.msg, stored.trace, stored.mail_from, stored.rcpt,
                                   stored.body, name)
        self.boxes.setdefault(box, []).append(stored)

    def mailbox_for(self, rcpt: str) -> str:
        """The mailbox that receives ``rcpt``; raises UnknownMailbox."""
        r = rcpt.lower()
        box = self.aliases.get(r, r)
        if self.known is not None and box not in self.known:
            raise UnknownMailbox(rcpt)
        return box

    def file(self, msg: str, trace: str, mail_from: str, rcpt: str,
             data: bytes | Deflated) -> str:
        """File one copy of ``data`` for ``rcpt``; return the mailbox's name
        (raises UnknownMailbox).  Reports nothing: the caller records it.
        A caller filing one message for several recipients deflates it once."""
        box = self.mailbox_for(rcpt)
        body = data if isinstance(data, Deflated) else Deflated.of(data)
        self._put(box, StoredMessage(msg=msg, trace=trace, mail_from=mail_from, rcpt=rcpt,
                                     body=body), None if isinstance(data, Deflated) else data)
        return box

    def count(self, mailbox: str | None = None) -> int:
        """Messages in ``mailbox``, or in every mailbox."""
        if mailbox is not None:
            return len(self.boxes.get(mailbox.lower(), []))
        return sum(len(v) for v in self.boxes.values())

    def messages(self, mailbox: str) -> list[StoredMessage]:
        """What ``mailbox`` holds, in arrival order."""
        return list(self.boxes.get(mailbox.lower(), []))

    def entries(self, mailbox: str) -> list[tuple[str, StoredMessage]]:
        """``(unique ID, message)`` for what ``mailbox`` holds, in arrival
        order; the IDs stay the same across sessions and restarts."""
        msgs = self.boxes.get(mailbox.lower(), [])
        return list(zip(_uids(msgs), msgs))

    def delete(self, mailbox: str, uids: Collection[str]) -> int:
        """Remove the messages with those unique IDs (from disk too);
        returns how many were removed."""
        box = self.boxes.get(mailbox.lower())
        if not box or not uids:
            return 0
        gone = set(uids)
        keep, dropped = [], []
        for uid, m in zip(_uids(box), box):
            (dropped if uid in gone else keep).append(m)
        if self.maildir is not None and dropped:
            self.maildir.remove(mailbox, [m.name for m in dropped])
        box[:] = keep            # in place: a caller may hold the list
        return len(dropped)

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
        body = Deflated.of(data)
        # Every copy is kept (on disk, with a Maildir) before anything is
        # reported, so the 250 that follows never acknowledges a lost copy.
        for rcpt, box in targets:
            self._put(box, StoredMessage(msg=msg, trace=trace, mail_from=mail_from, rcpt=rcpt,
                                         body=body), data)
        self.ctx.sink.emit(MessageAccepted(
            t=now, host=host, msg=msg, trace=trace, conn=conn, client_ip=client_ip,
            helo=helo, mail_from=mail_from, rcpts=tuple(acknowledged), size=len(data)))
        for rcpt, box in targets:
            self.ctx.sink.emit(DeliveredToMailbox(t=now, host=host, msg=msg, trace=trace,
                                                  rcpt=rcpt, mailbox=box))
        return msg


def _uids(messages: list[StoredMessage]) -> list[str]:
    """Stable unique IDs (RFC 1939 UIDL) for one mailbox's messages.

    A message on disk is its file name, hashed (names are unique and
    stable, and the hash keeps the ID within RFC 1939's 70 characters).  In
    memory a message has no ID of its own: the queue ID (``msg``) is unique
    per run but one message can land twice in one mailbox (two recipients
    aliased to it), so the ID hashes ``msg`` with the recipient.
    Byte-identical twins (the same recipient twice) get ``-2``, ``-3``...:
    deleting the first renames the second to the first's ID, which no
    client can tell from the original.
    """
    seen: dict[str, int] = {}
    out = []
    for m in messages:
        key = f"file\0{m.name}" if m.name else f"{m.msg}\0{m.rcpt}"
        base = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        n = seen.get(base, 0) + 1
        seen[base] = n
        out.append(base if n == 1 else f"{base}-{n}")
    return out
