"""The in-memory mailbox store keeps bodies deflated and gives back exactly
what it was given."""
from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from mta.context import HostContext
from mta.events.sinks import MemorySink
from mta.mailbox import Deflated, MailboxStore

BOB, ANN = "bob@c.example", "ann@c.example"


def store() -> MailboxStore:
    ctx = HostContext(hostname="mx.c.example", sink=MemorySink(), clock=lambda: 5.0)
    return MailboxStore(ctx, [BOB, ANN], aliases={"postmaster": BOB})


@given(st.binary(max_size=20_000))
def test_a_deflated_body_is_the_same_bytes(data: bytes) -> None:
    assert Deflated.of(data).data == data


def test_a_typical_message_is_held_in_a_fraction_of_its_size() -> None:
    body = (b"From: <a@b.example>\r\nTo: <bob@c.example>\r\nSubject: s\r\n\r\n"
            + b"x" * 76 + b"\r\n") * 50
    assert len(Deflated.of(body).packed) < len(body) / 5


def test_accepted_mail_reads_back_exactly_and_recipients_share_one_body() -> None:
    s = store()
    data = b"Subject: hi\r\nMessage-ID: <1@b>\r\n\r\n" + bytes(range(256)) * 40
    asyncio.run(s.accept(conn="c1", client_ip="192.0.2.1", helo="h.example",
                         mail_from="a@b.example", rcpts=[BOB, ANN], acknowledged=[BOB, ANN],
                         data=data))
    bob, ann = s.messages(BOB)[0], s.messages(ANN)[0]
    assert bob.data == ann.data == data
    assert bob.body is ann.body


def test_filing_takes_bytes_or_a_shared_body() -> None:
    s = store()
    body = Deflated.of(b"one\r\n")
    s.file("m1", "t1", "a@b.example", BOB, body)
    s.file("m1", "t1", "a@b.example", "postmaster", body)
    s.file("m2", "t2", "a@b.example", ANN, b"two\r\n")
    assert [m.data for m in s.messages(BOB)] == [b"one\r\n", b"one\r\n"]
    assert s.messages(BOB)[1].body is body
    assert s.messages(ANN)[0].data == b"two\r\n"
