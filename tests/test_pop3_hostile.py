"""Hostile input on real sockets: every line gets +OK or -ERR, the server
keeps serving, and nothing changes a maildrop but a QUIT."""
from __future__ import annotations

import asyncio
import socket

from mta.events import ConnectionClosed, PolicyDecision
from mta.pop3 import ThrottleConfig
from helpers.pop3 import BOB, USERS, run_live


class Raw:
    """A blocking raw-socket POP3 peer."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")
        self.greeting = self.line()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        return self.file.readline().rstrip(b"\r\n")

    def cmd(self, data: bytes) -> bytes:
        self.send(data + b"\r\n")
        return self.line()

    def rest(self) -> bytes:
        out = self.file.read()
        self.close()
        return out

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def blocking(fn):
    async def client(port, server, store):
        return await asyncio.to_thread(fn, port)
    return client


def login(r: Raw) -> None:
    assert r.cmd(b"USER bob").startswith(b"+OK")
    assert r.cmd(b"PASS " + USERS["bob"].encode()).startswith(b"+OK")


def test_over_long_lines_get_err_and_the_session_goes_on() -> None:
    def go(port):
        r = Raw(port)
        out = [r.cmd(b"NOOP " + b"x" * 300)]            # 306 octets with CRLF
        out.append(r.cmd(b"CAPA"))
        while r.line() != b".":
            pass
        out.append(r.cmd(b"X" * 253))                   # 253 + CRLF = 255: at the limit, just unknown
        out.append(r.cmd(b"X" * 254))                   # 256: over
        r.send(b"A" * 100_000)                          # no line end at all, then one
        out.append(r.cmd(b""))
        login(r)
        out.append(r.cmd(b"STAT"))
        out.append(r.cmd(b"QUIT"))
        r.close()
        return out

    out, _, _ = run_live(blocking(go))
    assert out[0] == b"-ERR line too long (RFC 2449: 255 octets)"
    assert out[1].startswith(b"+OK")
    assert out[2] == b"-ERR unknown command"
    assert out[3] == out[4] == out[0]
    assert out[5] == b"+OK 3 " + out[5].split()[-1] and out[6].startswith(b"+OK")


def test_a_long_pass_line_never_completes_a_login() -> None:
    def go(port):
        r = Raw(port)
        r.cmd(b"USER bob")
        out = [r.cmd(b"PASS " + USERS["bob"].encode() + b" " * 300)]
        out.append(r.cmd(b"PASS " + USERS["bob"].encode()))    # USER is needed again
        r.close()
        return out

    out, _, _ = run_live(blocking(go))
    assert out == [b"-ERR line too long (RFC 2449: 255 octets)", b"-ERR send USER first"]


def test_commands_out_of_state_unknown_and_garbage_get_err() -> None:
    transaction_only = [b"STAT", b"LIST", b"UIDL", b"RETR 1", b"TOP 1 1", b"DELE 1", b"RSET", b"NOOP"]
    garbage = [b"", b"HELO x", b"\x00\x01\x02", b"\xff\xfe", b"US", b"USERNAME bob", b"STAT\tx",
               b"RETR", b"TOP 1", b"LIST 1 2", b"USER " + b"u" * 41, b"\xc3\xa9t\xc3\xa9"]

    def go(port):
        r = Raw(port)
        before = [r.cmd(c) for c in transaction_only + garbage + [b"PASS x"]]
        login(r)
        after = [r.cmd(c) for c in [b"USER bob", b"PASS x", b"APOP bob 0123", b"STLS",
                                    b"RETR 0", b"RETR -1", b"RETR 4", b"RETR abc", b"TOP 1 x",
                                    b"TOP 1 -2", b"DELE 99999999999999999999", b"LIST \xd9\xa3"]]
        after.append(r.cmd(b"DELE 1"))
        r.close()                                        # no QUIT: nothing deleted
        return before, after

    (before, after), sink, store = run_live(blocking(go))
    assert before[:8] == [b"-ERR command not valid in this state"] * 8
    assert all(x.startswith(b"-ERR ") for x in before[8:])
    assert before[-1] == b"-ERR send USER first"
    assert after[:-1] and all(x.startswith(b"-ERR ") for x in after[:-1])
    assert after[3] == b"-ERR command not valid in this state"
    assert after[-1] == b"+OK message 1 deleted"
    assert len(store.messages(BOB)) == 3
    assert not [e for e in sink.events if type(e).__name__ == "ComponentError"]


def test_wrong_password_loop_disconnects_after_five_and_server_keeps_serving() -> None:
    def go(port):
        r = Raw(port)
        replies = []
        for i in range(10):
            assert r.cmd(b"USER bob").startswith(b"+OK")
            replies.append(r.cmd(b"PASS wrong%d" % i))
            if b"too many" in replies[-1]:
                break
        closed = r.rest() == b""
        s = Raw(port)                                    # another client still served
        ok = s.cmd(b"CAPA").startswith(b"+OK")
        s.close()
        return replies, closed, ok

    (replies, closed, ok), sink, _ = run_live(
        blocking(go), throttle=ThrottleConfig(base_delay=0.0, max_delay=0.0))
    assert len(replies) == 5 and closed and ok
    assert replies[-1] == b"-ERR [AUTH] too many authentication failures, closing connection"
    decisions = [e.decision for e in sink.of_kind(PolicyDecision)]
    assert decisions.count("fail") == 5 and decisions[-1] == "disconnect"
    assert sink.of_kind(ConnectionClosed)[0].reason == "cut-off"


def test_disconnect_mid_command_leaves_maildrop_unlocked_and_unchanged() -> None:
    def first(port):
        r = Raw(port)
        login(r)
        assert r.cmd(b"DELE 1").startswith(b"+OK")
        r.send(b"DELE 2\r\nQU")                           # half a QUIT, then gone
        assert r.line().startswith(b"+OK")
        r.sock.shutdown(socket.SHUT_RDWR)
        r.close()

    def second(port):
        r = Raw(port)
        login(r)
        n = r.cmd(b"STAT")
        r.cmd(b"QUIT")
        r.close()
        return n

    async def client(port, server, store):
        await asyncio.to_thread(first, port)
        while server.active:
            await asyncio.sleep(0.01)
        locked = len(server.locks)
        return locked, await asyncio.to_thread(second, port)

    (locked, stat), sink, store = run_live(client)
    assert locked == 0 and stat.startswith(b"+OK 3 ")
    assert len(store.messages(BOB)) == 3


def test_pipelined_flood_is_answered_in_order() -> None:
    def go(port):
        r = Raw(port)
        login(r)
        r.send(b"NOOP\r\n" * 2000 + b"STAT\r\nQUIT\r\n")
        lines = r.rest().split(b"\r\n")
        return lines

    lines, _, _ = run_live(blocking(go))
    assert lines[:2000] == [b"+OK"] * 2000
    assert lines[2000].startswith(b"+OK 3 ") and lines[2001].startswith(b"+OK")


def test_pipelined_retrs_from_a_client_that_never_reads_stay_bounded() -> None:
    big = b"Subject: big\r\n\r\n" + b"y" * 100 * 1024 + b"\r\n"

    async def client(port, server, store):
        await store.accept(conn="c9", client_ip="198.51.100.25", helo="x", mail_from="a@b.example",
                           rcpts=[BOB], acknowledged=[BOB], data=big)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.transport.pause_reading()              # we never read
        writer.write(b"USER bob\r\nPASS " + USERS["bob"].encode() + b"\r\n" + b"RETR 4\r\n" * 400)
        for _ in range(200):                          # let the server run until it stalls
            await asyncio.sleep(0.01)
        proto = server.active[0]
        buffered = proto.transport.get_write_buffer_size()
        stalled = proto.write_paused and len(proto.pending) > 0
        writer.transport.abort()
        return buffered, stalled

    (buffered, stalled), _, store = run_live(client)
    assert stalled and buffered < 2 * 1024 * 1024     # not 400 x 100 KB
    assert len(store.messages(BOB)) == 4
