"""Mailboxes on disk (``mta/maildir.py`` behind ``MailboxStore``): written
through ``tmp/`` into ``new/``, reloaded in order with the same POP3 IDs,
deleted from disk, and refused up front when the folder takes no files."""
from __future__ import annotations

import asyncio

import pytest

from mta.context import HostContext
from mta.events.sinks import MemorySink
from mta.mailbox import MailboxStore
from mta.maildir import Maildir
from mta.pop3 import MailboxStoreDrops

BOB = "bob@c.example"


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.25

    def __call__(self) -> float:
        self.t += 0.5
        return self.t


def store(root, mailboxes=(BOB,)) -> MailboxStore:
    ctx = HostContext(hostname="mx.c.example", sink=MemorySink(), clock=Clock())
    return MailboxStore(ctx, mailboxes, maildir=Maildir(root, "mx.c.example"))


def accept(s: MailboxStore, data: bytes, rcpts=(BOB,)) -> str:
    return asyncio.run(s.accept(conn="c1", client_ip="192.0.2.1", helo="h.example",
                                mail_from="a@b.example", rcpts=list(rcpts),
                                acknowledged=list(rcpts), data=data))


def test_delivered_mail_is_on_disk_and_comes_back_in_order(tmp_path):
    s = store(tmp_path / "mail")
    bodies = [b"Message-ID: <m%d@b>\r\n\r\nbody %d\r\n" % (i, i) for i in range(12)]
    for b in bodies:
        accept(s, b)
    new = tmp_path / "mail" / BOB / "new"
    assert sorted(p.read_bytes() for p in new.iterdir()) == sorted(bodies)
    assert not any((tmp_path / "mail" / BOB / "tmp").iterdir())
    again = store(tmp_path / "mail")
    assert [m.data for m in again.messages(BOB)] == bodies
    assert [m.trace for m in again.messages(BOB)] == [f"m{i}@b" for i in range(12)]
    assert [m.msg for m in again.messages(BOB)] == [m.msg for m in s.messages(BOB)]
    assert MailboxStoreDrops(again).listing(BOB) == MailboxStoreDrops(s).listing(BOB)


def test_delete_removes_files_and_ids_stay_put(tmp_path):
    s = store(tmp_path / "mail")
    for i in range(3):
        accept(s, b"Subject: %d\r\n\r\nx\r\n" % i)
    drops = MailboxStoreDrops(s)
    uids = [m.uid for m in drops.listing(BOB)]
    assert drops.delete(BOB, [uids[1]]) == 1
    assert len(list((tmp_path / "mail" / BOB / "new").iterdir())) == 2
    assert [m.uid for m in MailboxStoreDrops(store(tmp_path / "mail")).listing(BOB)] == \
        [uids[0], uids[2]]


def test_an_interrupted_delivery_is_never_listed(tmp_path):
    s = store(tmp_path / "mail")
    accept(s, b"Subject: kept\r\n\r\nx\r\n")
    (tmp_path / "mail" / BOB / "tmp" / "1700000000.M000000Q9.m9.mx").write_bytes(b"half")
    again = store(tmp_path / "mail")
    assert [m.data.split(b"\r\n")[1] for m in again.messages(BOB)] == [b"Subject: kept"]
    assert not any((tmp_path / "mail" / BOB / "tmp").iterdir())


def test_odd_mailbox_names_stay_inside_the_root(tmp_path):
    disk = Maildir(tmp_path / "mail", "h")
    assert disk.folder("../x@y").parent == tmp_path / "mail"
    assert disk.folder("..").parent == tmp_path / "mail"
    disk.deliver("a/b@c", b"x", now=1.0, msg="h/m1")
    assert list(disk.load()) == ["a/b@c"]


def test_check_names_a_folder_that_takes_no_files(tmp_path):
    (tmp_path / "mail").write_text("a file")
    with pytest.raises(OSError, match="cannot write in .*mail"):
        Maildir(tmp_path / "mail", "h").check()
