"""The POP3 server on real loopback, driven by the standard library's poplib."""
from __future__ import annotations

import asyncio
import poplib
import ssl

import pytest
import trustme

from mta.events import ConnectionClosed, ConnectionOpened, PolicyDecision, Pop3Login
from mta.pop3 import RelayGrants, apop_digest
from helpers.pop3 import BOB, HOST, MESSAGES, USERS, run_live


def pop(port: int) -> poplib.POP3:
    return poplib.POP3("127.0.0.1", port, timeout=10)


def login(port: int, user: str = "bob") -> poplib.POP3:
    p = pop(port)
    p.user(user)
    p.pass_(USERS[user])
    return p


def blocking(fn):
    """A client for run_live that runs ``fn(port)`` in a thread."""
    async def client(port, server, store):
        return await asyncio.to_thread(fn, port)
    return client


def crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def test_every_command_with_poplib() -> None:
    def go(port):
        p = pop(port)
        out = {"welcome": p.getwelcome(), "capa": p.capa()}
        out["user"] = p.user("bob")
        out["pass"] = p.pass_(USERS["bob"])
        out["stat"] = p.stat()
        out["list"] = p.list()
        out["list2"] = p.list(2)
        out["uidl"] = p.uidl()
        out["uidl1"] = p.uidl(1)
        out["retr"] = [p.retr(i) for i in (1, 2, 3)]
        out["top"] = p.top(3, 2)
        out["noop"] = p.noop()
        out["dele"] = p.dele(1)
        out["stat_after_dele"] = p.stat()
        with pytest.raises(poplib.error_proto) as info:
            p.retr(1)
        out["retr_deleted"] = info.value.args[0]
        out["rset"] = p.rset()
        out["stat_after_rset"] = p.stat()
        out["quit"] = p.quit()
        return out

    out, sink, store = run_live(blocking(go))
    assert out["welcome"].startswith(f"+OK {HOST} POP3 server ready <".encode())
    assert {"TOP", "USER", "UIDL", "RESP-CODES", "PIPELINING"} <= set(out["capa"])
    assert "STLS" not in out["capa"]          # no SSLContext given: not offered
    assert out["pass"].startswith(b"+OK bob's maildrop has 3 messages")
    stored = [m.data for m in store.messages(BOB)]      # with the Message-ID the store added
    assert all(d.endswith(m) for d, m in zip(stored, MESSAGES))
    sizes = [len(crlf(m)) for m in stored]
    assert out["stat"] == (3, sum(sizes))
    assert out["list"][1] == [b"%d %d" % (i + 1, s) for i, s in enumerate(sizes)]
    assert out["list2"] == b"+OK 2 %d" % sizes[1]
    for (resp, lines, octets), data, size in zip(out["retr"], stored, sizes):
        assert b"\r\n".join(lines) + b"\r\n" == crlf(data)       # unstuffed by poplib
        assert octets == size
    assert b".hidden dot line" in out["retr"][0][1] and b"..two dots" in out["retr"][0][1]
    top_lines = out["top"][1]
    assert top_lines[1:] == [b"From: c@sender.example", b"Subject: three", b"", b"body line 1", b"body line 2"]
    assert out["retr_deleted"].startswith(b"-ERR")
    assert out["stat_after_dele"][0] == 2 and out["stat_after_rset"][0] == 3
    assert out["quit"].startswith(b"+OK")
    assert len(store.messages(BOB)) == 3          # RSET undid the DELE
    kinds = [type(e) for e in sink.events if isinstance(e, (ConnectionOpened, ConnectionClosed, Pop3Login))]
    assert kinds == [ConnectionOpened, Pop3Login, ConnectionClosed]
    opened = sink.of_kind(ConnectionOpened)[0]
    assert opened.service == "pop3" and opened.client_ip == "127.0.0.1"
    assert sink.of_kind(ConnectionClosed)[0].reason == "quit"


def test_uidl_is_stable_across_sessions_and_dele_quit_really_deletes() -> None:
    def go(port):
        p = login(port)
        first = p.uidl()[1]
        p.dele(2)
        p.quit()
        p = login(port)
        second = p.uidl()[1]
        retr = p.retr(2)[1]
        p.quit()
        return first, second, retr

    (first, second, retr), sink, store = run_live(blocking(go))
    uids = [ln.split()[1] for ln in first]
    assert len(set(uids)) == 3
    assert [ln.split()[1] for ln in second] == [uids[0], uids[2]]   # same IDs, renumbered
    assert retr[2] == b"Subject: three"
    assert [m.data.split(b"\r\n", 1)[1] for m in store.messages(BOB)] == [MESSAGES[0], MESSAGES[2]]


def test_dropped_connection_deletes_nothing_and_unlocks() -> None:
    def drop(port):
        p = login(port)
        p.dele(1)
        p.dele(2)
        p.file.close()
        p.sock.close()                  # gone without QUIT

    def again(port):
        p = login(port)                 # the lock was released
        n = p.stat()[0]
        p.quit()
        return n

    async def client(port, server, store):
        await asyncio.to_thread(drop, port)
        while server.active:            # until the server has seen the close
            await asyncio.sleep(0.01)
        return await asyncio.to_thread(again, port)

    n, sink, store = run_live(client)
    assert n == 3 and len(store.messages(BOB)) == 3
    assert [e.reason for e in sink.of_kind(ConnectionClosed)] == ["closed", "quit"]


def test_apop_login_and_wrong_digest() -> None:
    def go(port):
        p = pop(port)
        p.apop("bob", USERS["bob"])      # poplib reads the timestamp from the greeting
        stamp = p.timestamp.search(p.getwelcome()).group(1).decode()
        n = p.stat()[0]
        p.quit()
        q = pop(port)
        with pytest.raises(poplib.error_proto) as info:
            q.apop("bob", "wrong")
        q.quit()
        return stamp, n, info.value.args[0]

    (stamp, n, refused), sink, _ = run_live(blocking(go))
    assert n == 3 and refused == b"-ERR [AUTH] authentication failed"
    assert stamp.startswith("<") and stamp.endswith(f"@{HOST}>")
    assert len(apop_digest(stamp, "x")) == 32
    assert [e.user for e in sink.of_kind(Pop3Login)] == ["bob"]
    fails = [e for e in sink.of_kind(PolicyDecision) if e.stage == "pop3-auth"]
    assert [e.decision for e in fails] == ["fail"]


def test_second_login_to_a_locked_maildrop_is_in_use() -> None:
    def go(port):
        a = login(port)
        b = pop(port)
        b.user("bob")
        with pytest.raises(poplib.error_proto) as info:
            b.pass_(USERS["bob"])
        b.user("ann")                    # the session goes on: another maildrop works
        ok = b.pass_(USERS["ann"])
        b.quit()
        a.quit()
        return info.value.args[0], ok

    (refused, ok), sink, _ = run_live(blocking(go))
    assert refused.startswith(b"-ERR [IN-USE]") and ok.startswith(b"+OK ann's maildrop")
    assert [e.decision for e in sink.of_kind(PolicyDecision)] == ["in-use"]


def test_login_feeds_the_pop_before_smtp_grant_table() -> None:
    grants = RelayGrants()

    def go(port):
        login(port).quit()

    _, sink, _ = run_live(blocking(go), on_login=grants.on_login)
    ev = sink.of_kind(Pop3Login)[0]
    assert (ev.client_ip, ev.user) == ("127.0.0.1", "bob")
    assert grants.allowed("127.0.0.1", ev.t) and grants.allowed("127.0.0.1", ev.t + 5399.9)
    assert not grants.allowed("127.0.0.1", ev.t + 5400) and not grants.allowed("127.0.0.2", ev.t)
    assert grants.current("127.0.0.1", ev.t).user == "bob"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def tls_contexts(ca: trustme.CA) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST, "127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


def test_stls_with_a_trustme_certificate(ca) -> None:
    server_ctx, client_ctx = tls_contexts(ca)

    def go(port):
        p = pop(port)
        before = p.capa()
        p.stls(context=client_ctx)
        after = p.capa()
        cert = p.sock.getpeercert()
        p.user("bob")
        p.pass_(USERS["bob"])
        retr = p.retr(1)[1]
        with pytest.raises(poplib.error_proto):
            p._shortcmd("STLS")            # once only; and not in TRANSACTION
        p.quit()
        return before, after, cert, retr

    (before, after, cert, retr), sink, _ = run_live(blocking(go), ssl=server_ctx)
    assert "STLS" in before and "STLS" not in after
    assert ("DNS", HOST) in cert["subjectAltName"]
    assert retr[2] == b"Subject: one"
    assert [e.reason for e in sink.of_kind(ConnectionClosed)] == ["quit"]


def test_stls_handshake_failure_is_recorded_and_unlocks(ca) -> None:
    server_ctx, _ = tls_contexts(ca)
    untrusting = ssl.create_default_context()     # does not know the CA

    def go(port):
        p = pop(port)
        with pytest.raises(ssl.SSLError):
            p.stls(context=untrusting)
        p.sock.close()
        q = login(port)                 # the server still serves
        q.quit()

    _, sink, _ = run_live(blocking(go), ssl=server_ctx)
    reasons = [e.reason for e in sink.of_kind(ConnectionClosed)]
    assert reasons == ["tls-failed", "quit"]
    assert [e.decision for e in sink.of_kind(PolicyDecision)] == ["handshake-failed"]


def test_stls_pipelined_commands_are_not_obeyed(ca) -> None:
    server_ctx, client_ctx = tls_contexts(ca)

    def go(port):
        p = pop(port)
        p._putline(b"STLS\r\nUSER bob")      # injected after STLS, in the clear
        resp = p._getresp()
        p.sock = client_ctx.wrap_socket(p.sock, server_hostname=HOST)
        p.file = p.sock.makefile("rb")
        p._tls_established = True
        with pytest.raises(poplib.error_proto) as info:
            p.pass_(USERS["bob"])            # the USER was discarded
        p.quit()
        return resp, info.value.args[0]

    (resp, refused), _, _ = run_live(blocking(go), ssl=server_ctx)
    assert resp.startswith(b"+OK") and refused == b"-ERR send USER first"
