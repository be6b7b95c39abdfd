"""The live relay's fast paths keep their behaviour.

* PIPELINING (RFC 2920, advertised in EHLO): a client that sends MAIL,
  RCPT, RCPT and DATA in one write gets its replies in order, on the live
  relay (mta.queue.live: server, SQLite queue, delivery to a sink) over
  loopback and on the simulated world; the message is queued and relayed.
* The idle timer (one armed timer, a moving deadline: ReceivingSMTP
  ._reset_timeout) still times out exactly the idle timeout after the last
  command or DATA line, in virtual time.
* The event loop choice of mta.queue.live (uvloop when installed).
"""
from __future__ import annotations

import asyncio
import sys

import pytest

from mta.events import ConnectionClosed, MessageAccepted, SmtpReply
from mta.queue.live import _loop_factory, run_relay
from mta.roles import PrimaryMx
from helpers.queue import Recorder, serve
from helpers.server import MX_IP, world_with

PIPELINED = (b"MAIL FROM:<s@client.example>\r\nRCPT TO:<a@dest.example>\r\n"
             b"RCPT TO:<b@dest.example>\r\nDATA\r\n")
BODY = b"Subject: pipelined\r\n\r\nline one\r\n..dot line\r\n.\r\n"


async def read_reply(reader: asyncio.StreamReader) -> tuple[int, list[str]]:
    """One whole (possibly multi-line) reply: (code, lines)."""
    lines = []
    while True:
        line = (await reader.readline()).decode()
        assert line.endswith("\r\n"), (line, lines)
        lines.append(line[4:-2])
        if line[3] == " ":
            return int(line[:3]), lines


async def pipelined_session(host: str, port: int, local: str,
                            group: bytes = PIPELINED) -> list[tuple[int, str]]:
    """EHLO, then MAIL/RCPT/RCPT/DATA in one write, body and QUIT in another."""
    reader, writer = await asyncio.open_connection(host, port)
    got = [(await read_reply(reader))[0:1] + ("",)]
    writer.write(f"EHLO {local}\r\n".encode())
    code, kws = await read_reply(reader)
    assert code == 250 and "PIPELINING" in kws
    got.append((code, "EHLO"))
    writer.write(group)             # one segment: RFC 2920 §3.1 command group
    for _ in range(4):
        code, text = await read_reply(reader)
        got.append((code, text[0]))
    writer.write(BODY + b"QUIT\r\n")
    for _ in range(2):
        code, text = await read_reply(reader)
        got.append((code, text[0]))
    assert await reader.read() == b""
    writer.close()
    return got


def check_replies(got: list[tuple[int, str]]) -> None:
    assert [c for c, _ in got] == [220, 250, 250, 250, 250, 354, 250, 221]
    assert got[2][1].startswith("2.1.0") and got[3][1].startswith("2.1.5")
    assert got[4][1].startswith("2.1.5") and got[6][1].startswith("2.0.0 Ok: queued as")


def test_pipelined_group_on_the_live_relay_over_loopback(tmp_path) -> None:
    async def go():
        sink = Recorder("sink")
        srv = await serve(sink, "sink.mxsim.test", port=0, host="127.0.0.1")
        ready: list[str] = []
        relay = asyncio.ensure_future(run_relay(
            db=str(tmp_path / "q.db"), port=0, next_hop=("127.0.0.1", srv.sockets[0].getsockname()[1]),
            hostname="relay.mxsim.test", ready=ready.append))
        while not ready:
            await asyncio.sleep(0.01)
        port = int(ready[0].split()[1])
        got = await pipelined_session("127.0.0.1", port, "client.example")
        for _ in range(500):
            if sink.messages:
                break
            await asyncio.sleep(0.01)
        relay.cancel()
        await asyncio.gather(relay, return_exceptions=True)
        srv.close()
        return got, sink.messages

    got, delivered = asyncio.run(go())
    check_replies(got)
    assert len(delivered) == 1
    _, rcpts, data = delivered[0]
    assert sorted(rcpts) == ["a@dest.example", "b@dest.example"]
    assert data.endswith(b"line one\r\n.dot line\r\n")


def test_pipelined_group_in_the_simulated_world() -> None:
    role = PrimaryMx(hostname="mx.example.net", local_domains=("example.net",))
    world, mx, stranger, _, _ = world_with(role)
    group = PIPELINED.replace(b"dest.example", b"example.net")
    got = world.run_until_complete(stranger, pipelined_session(MX_IP, 25, "bot.spam.example", group))
    check_replies(got)
    events = world.events
    assert [e.command for e in events if isinstance(e, SmtpReply)] == [
        "CONNECT", "EHLO", "MAIL", "RCPT", "RCPT", "DATA", "DATA_END", "QUIT"]
    accepted = [e for e in events if isinstance(e, MessageAccepted)]
    assert len(accepted) == 1 and accepted[0].rcpts == ("a@example.net", "b@example.net")


def idle_world(schedule: list[tuple[float, bytes]], idle: float = 300):
    """Send ``schedule``'s chunks at their (relative) virtual times after
    EHLO, then wait; returns (seconds from the last chunk to the 421, events)."""
    role = PrimaryMx(hostname="mx.example.net", local_domains=("example.net",), idle_timeout=idle)
    world, mx, stranger, _, _ = world_with(role)

    async def go():
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_connection(MX_IP, 25)
        await reader.readline()
        writer.write(b"EHLO bot.spam.example\r\n")
        while (await reader.readline())[3:4] == b"-":
            pass
        t0 = loop.time()
        last = t0
        for at, chunk in schedule:
            await asyncio.sleep(max(0.0, t0 + at - loop.time()))
            writer.write(chunk)
            last = loop.time()
        lines = []
        while True:
            line = await reader.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith(b"421"):
                waited = loop.time() - last
        writer.close()
        return waited, lines

    waited, lines = world.run_until_complete(stranger, go())
    return waited, lines, world.events


def test_commands_push_the_idle_deadline_back() -> None:
    sched = [(200, b"NOOP\r\n"), (400, b"NOOP\r\n"), (650, b"NOOP\r\n")]
    waited, lines, events = idle_world(sched)
    assert lines[:3] == [b"250 2.0.0 Ok\r\n"] * 3
    assert lines[3] == b"421 4.4.2 mx.example.net Error: timeout exceeded\r\n"
    assert waited == pytest.approx(300, abs=0.05)
    assert [e.reason for e in events if isinstance(e, ConnectionClosed)] == ["timeout"]


def test_each_data_line_pushes_the_idle_deadline_back() -> None:
    start = [(0, b"MAIL FROM:<s@x.example>\r\nRCPT TO:<a@example.net>\r\nDATA\r\n")]
    body = [(100 + 250 * i, b"line %d\r\n" % i) for i in range(4)]   # 250 s apart < 300
    waited, lines, _ = idle_world(start + body)
    assert [line[:3] for line in lines] == [b"250", b"250", b"354", b"421"]
    assert waited == pytest.approx(300, abs=0.05)   # after the last line, not the DATA command


def test_loop_choice(monkeypatch) -> None:
    assert _loop_factory("asyncio") is None
    try:
        import uvloop
    except ImportError:
        pass
    else:
        assert _loop_factory("auto") is uvloop.new_event_loop
    monkeypatch.setitem(sys.modules, "uvloop", None)     # as if not installed
    assert _loop_factory("auto") is None
    with pytest.raises(SystemExit):
        _loop_factory("uvloop")


def test_sqlite_group_larger_than_a_chunk_keeps_order_and_forgets_all(tmp_path) -> None:
    """The store's multi-row statements (400 rows each): a group of 450
    messages (1350 event rows) replays in write order, and forgetting 420
    of them in one batch removes their events and bodies."""
    from mta import events as ev
    from mta.queue.sqlite_store import SqliteStore
    from mta.queue.sqlite_store import _CHUNK

    def accepted(n: int) -> list[ev.Event]:
        msg = f"h/m{n}"
        return [ev.MessageSubmitted(t=float(n), host="h", msg=msg, trace=f"t{n}",
                                    mail_from="s@a.example", rcpts=("u@b.example", "v@b.example"),
                                    size=10)] + [
            ev.Queued(t=float(n), host="h", msg=msg, trace=f"t{n}", rcpt=r, domain="b.example")
            for r in ("u@b.example", "v@b.example")]

    n = 450
    assert 3 * n > 2 * _CHUNK
    path = str(tmp_path / "q.db")

    async def go() -> tuple[int, int]:
        store = SqliteStore(path)
        # Every write before the first await: one group, one commit.
        futs = [store.write(accepted(i), {f"h/m{i}": b"body %d" % i}, id_high=i) for i in range(n)]
        await asyncio.gather(*futs)
        commits = store.commits
        gone = tuple(f"h/m{i}" for i in range(0, 420))
        await store.write([], forget=gone)
        store.close()
        return commits, store.commits

    first, total = asyncio.run(go())
    assert (first, total) == (1, 2)
    store = SqliteStore(path)
    rec = store.load()
    store.close()
    expected = [e for i in range(420, n) for e in accepted(i)]
    assert rec.events == expected
    assert sorted(rec.bodies) == sorted(f"h/m{i}" for i in range(420, n))
    assert rec.bodies["h/m449"] == b"body 449" and rec.id_high == n - 1
