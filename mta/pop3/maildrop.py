"""What the POP3 server reads: maildrops, their messages, their locks.

The server depends only on the small :class:`Maildrops` protocol (list a
maildrop's messages with stable unique IDs, delete some of them by ID), so
any mailbox store can sit behind it.  :class:`MailboxStoreDrops` adapts the
in-memory :class:`mta.mailbox.MailboxStore` the MX roles deliver into.

:class:`MaildropLocks` is the exclusive-access lock RFC 1939 §8 asks for:
a maildrop is held from a successful login until the session ends, and a
second login to it gets ``-ERR [IN-USE]`` (RFC 2449 §8.1.1).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Protocol

from mta.mailbox import MailboxStore

#: RFC 1939 §7: a unique-id is 1 to 70 characters in 0x21..0x7E.
MAX_UID = 70


@dataclass(frozen=True, slots=True)
class DropMessage:
    """One message of a maildrop: its unique ID and its bytes as stored."""

    uid: str
    data: bytes

    def __post_init__(self) -> None:
        if not (0 < len(self.uid) <= MAX_UID and all(0x21 <= ord(c) <= 0x7E for c in self.uid)):
            raise ValueError(f"bad POP3 unique-id {self.uid!r} (RFC 1939 §7)")


class Maildrops(Protocol):
    """A mailbox store as the POP3 server sees it.

    ``listing`` gives a maildrop's messages in a stable order (oldest
    first) with unique IDs that stay the same across sessions (UIDL);
    an unknown maildrop is an empty one.  ``delete`` removes the messages
    with those IDs and returns how many it removed; messages that arrived
    after the listing are untouched.  Both are synchronous: the session
    takes its snapshot at login and applies deletions at QUIT.
    """

    def listing(self, mailbox: str) -> list[DropMessage]: ...

    def delete(self, mailbox: str, uids: Collection[str]) -> int: ...


class MailboxStoreDrops:
    """:class:`Maildrops` over a :class:`~mta.mailbox.MailboxStore` (in
    memory, or on disk when the store has a Maildir)."""

    def __init__(self, store: MailboxStore) -> None:
        self.store = store

    def listing(self, mailbox: str) -> list[DropMessage]:
        return [DropMessage(uid, m.data) for uid, m in self.store.entries(mailbox)]

    def delete(self, mailbox: str, uids: Collection[str]) -> int:
        return self.store.delete(mailbox, uids)


class MemoryDrops:
    """A plain in-memory :class:`Maildrops` (``{mailbox: [DropMessage]}``),
    for tests and for roles that keep no MailboxStore."""

    def __init__(self, boxes: dict[str, list[DropMessage]] | None = None) -> None:
        self.boxes = {k.lower(): list(v) for k, v in (boxes or {}).items()}

    def listing(self, mailbox: str) -> list[DropMessage]:
        return list(self.boxes.get(mailbox.lower(), []))

    def delete(self, mailbox: str, uids: Collection[str]) -> int:
        box = self.boxes.get(mailbox.lower(), [])
        gone = set(uids)
        keep = [m for m in box if m.uid not in gone]
        removed = len(box) - len(keep)
        box[:] = keep
        return removed


class MaildropLocks:
    """Which maildrops a session holds.  Share one instance between every
    server that serves the same store (port 110 and 995, say)."""

    def __init__(self) -> None:
        self._held: dict[str, str] = {}

    def acquire(self, mailbox: str, holder: str) -> bool:
        """Take ``mailbox`` for ``holder`` (a connection ID); False if held."""
        key = mailbox.lower()
        if key in self._held:
            return False
        self._held[key] = holder
        return True

    def release(self, mailbox: str, holder: str) -> None:
        """Give ``mailbox`` back if ``holder`` holds it (idempotent)."""
        key = mailbox.lower()
        if self._held.get(key) == holder:
            del self._held[key]

    def holder(self, mailbox: str) -> str | None:
        return self._held.get(mailbox.lower())

    def __len__(self) -> int:
        return len(self._held)
