"""SMTP-on-Demand finger listener (RFC 1288): query parsing, answers, and a
real release on loopback through the real queue."""
from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from mta.context import HostContext
from mta.events import ConnectionClosed, ConnectionOpened, FingerQuery, Released
from mta.events.sinks import MemorySink
from mta.ondemand.finger import (A_BAD, A_FORWARDING, A_TOO_LONG, A_USAGE, FingerRequest, answer_query,
                        parse_query)
from mta.roles import QueueingServer
from test_queue_support import held_mail_on_loopback, wait_for_mailbox


def test_parse_queries() -> None:
    assert parse_query(b"dial.example") == FingerRequest("domain", "dial.example")
    assert parse_query(b"/W Dial.Example.") == FingerRequest("domain", "dial.example", True)
    assert parse_query(b"") == FingerRequest("list")
    assert parse_query(b"/W") == FingerRequest("list", verbose=True)
    assert parse_query(b"user@host.example").kind == "forward"
    assert parse_query(b"@host.example").kind == "forward"
    for bad in (b"two words", b"\xff\xfe", b"bad_name", b"a\x00b", b"[192.0.2.1]"):
        assert parse_query(bad).kind == "bad", bad


@given(st.binary(max_size=100))
def test_parse_never_raises(raw: bytes) -> None:
    req = parse_query(raw)
    assert req.kind in ("domain", "forward", "list", "bad")
    text, started = answer_query(req, target=None, client_ip="192.0.2.1")
    assert text and started == 0


@given(st.lists(st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True), min_size=1, max_size=3))
def test_any_at_sign_is_forwarding(labels: list[str]) -> None:
    assert parse_query(("x@" + ".".join(labels)).encode()).kind == "forward"


async def _scenario():
    held = await held_mail_on_loopback(2)
    sink, q_ctx, queue, store, cust_srv = held.sink, held.ctx, held.queue, held.store, held.customer
    role = QueueingServer(hostname="q.isp.example", relay_domains=("dial.example",))
    finger = role.build_finger(q_ctx, queue)
    fport = (await finger.start("127.0.0.1", 0)).sockets[0].getsockname()[1]

    async def ask(data: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", fport)
        writer.write(data)
        if not data:
            writer.write_eof()
        answer = await reader.read()           # the server answers and closes
        writer.close()
        return answer

    answers = {}
    for q in (b"user@dial.example\r\n", b"\r\n", b"\xff garbage\r\n", b"x" * 600,
              b"other.example\r\n", b"", b"dial.example\r\n"):
        answers[q[:20]] = await ask(q)
    await wait_for_mailbox(store, "user@dial.example", 2)
    answers[b"again"] = await ask(b"/W dial.example\r\n")
    await finger.stop()
    await queue.close()
    await cust_srv.stop()
    await asyncio.sleep(0)
    return answers, sink, store


def test_finger_on_loopback() -> None:
    answers, sink, store = asyncio.run(_scenario())
    assert answers[b"user@dial.example\r\n"] == A_FORWARDING.encode() + b"\r\n"
    assert answers[b"\r\n"] == A_USAGE.encode() + b"\r\n"
    assert answers[b"\xff garbage\r\n"] == A_BAD.encode() + b"\r\n"
    assert answers[b"x" * 20] == A_TOO_LONG.encode() + b"\r\n"
    assert answers[b"other.example\r\n"] == b"other.example: no mail is held here for this domain\r\n"
    assert answers[b""] == A_BAD.encode() + b"\r\n"
    assert answers[b"dial.example\r\n"] == b"dial.example: delivery of 2 queued messages started\r\n"
    assert answers[b"again"] == b"dial.example: no messages queued\r\n"
    assert len(store.messages("user@dial.example")) == 2
    fq = sink.of_kind(FingerQuery)
    assert len(fq) == 8 and [q.released for q in fq] == [0, 0, 0, 0, 0, 0, 2, 0]
    assert fq[0].query == "user@dial.example" and fq[0].answer == A_FORWARDING
    rel = sink.of_kind(Released)
    assert [(r.domain, r.trigger, r.count, r.client_ip) for r in rel] == [("dial.example", "finger", 2, "127.0.0.1")]
    opened = [e for e in sink.of_kind(ConnectionOpened) if e.service == "finger"]
    closed_ids = {e.conn for e in sink.of_kind(ConnectionClosed)}
    assert len(opened) == 8 and all(e.conn in closed_ids for e in opened)


class _BrokenQueue:
    """A ReleaseTarget whose release() raises (a bug or a dead queue)."""

    def held_count(self, domain: str, include_subdomains: bool) -> int:
        return 1

    def release(self, domain: str, include_subdomains: bool, trigger: str, client_ip: str) -> int:
        raise RuntimeError("release exploded")


def test_failed_release_is_recorded_not_swallowed() -> None:
    from mta.events import ComponentError
    from mta.ondemand.finger import FingerListener

    async def scenario():
        sink = MemorySink()
        listener = FingerListener(HostContext("q.isp.example", sink=sink), _BrokenQueue())
        port = (await listener.start("127.0.0.1", 0)).sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"dial.example\r\n")
        answer = await reader.read()
        writer.close()
        await listener.stop()
        await asyncio.sleep(0)
        return answer, sink

    answer, sink = asyncio.run(scenario())
    assert answer == b"dial.example: unable to start delivery now\r\n"
    assert [(e.where, e.error) for e in sink.of_kind(ComponentError)] == \
        [("finger release", "RuntimeError: release exploded")]
