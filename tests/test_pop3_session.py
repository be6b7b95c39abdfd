"""The pure POP3 core: the state table, replies, UPDATE semantics, and a
hypothesis test that random command streams never crash a session and
never change a maildrop without a QUIT in the TRANSACTION state."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mta.pop3 import (DropMessage, LoginThrottle, MaildropLocks, MemoryDrops, Pop3Session,
                      ThrottleConfig, accounts_from, apop_digest)
from mta.pop3 import commands as C

MSGS = [DropMessage("u1", b"Subject: a\r\n\r\n.dot\r\nx\r\n"),
        DropMessage("u2", b"Subject: b\n\nbare\n"),
        DropMessage("u3", b"no body line")]
ACCOUNTS = accounts_from({"bob": "pw", "ann": "pw2"}, {"bob": "bob@x.example"})
STAMP = "<1.0@pop.example>"


def session(drops=None, locks=None, conn="h/c1", throttle=None, tls=False) -> Pop3Session:
    return Pop3Session(hostname="pop.example", conn=conn, client_ip="192.0.2.9",
                       accounts=ACCOUNTS, drops=drops or MemoryDrops({"bob@x.example": MSGS}),
                       locks=MaildropLocks() if locks is None else locks,
                       throttle=throttle or LoginThrottle(),
                       timestamp=STAMP, tls_offered=tls)


def run(s: Pop3Session, *lines: bytes) -> list[bytes]:
    return [s.handle(ln, 0.0).reply for ln in lines]


def test_every_command_has_a_handler_and_a_state() -> None:
    for name, spec in C.COMMANDS.items():
        assert hasattr(Pop3Session, "_do_" + name.lower()), name
        assert spec.states <= {C.AUTHORIZATION, C.TRANSACTION}
        assert 3 <= len(name) <= 4


def test_parse_line() -> None:
    assert C.parse_line(b"list 1") == C.Command("LIST", ("1",))
    assert C.parse_line(b"PASS with  spaces ") == C.Command("PASS", ("with  spaces ",))
    assert C.parse_line(b"FOO").reply == C.E_UNKNOWN
    assert C.parse_line(b"").reply == C.E_SYNTAX
    assert C.parse_line(b"RETR 1 2").reply == C.E_ARGS
    assert C.parse_line(b"\xff").reply == C.E_ENCODING
    assert C.parse_line(b"NOOP\x00").reply == C.E_SYNTAX


def test_greeting_carries_the_apop_timestamp() -> None:
    assert session().greeting() == b"+OK pop.example POP3 server ready <1.0@pop.example>\r\n"


def test_transaction_replies_and_dot_stuffing() -> None:
    s = session()
    assert run(s, b"USER bob", b"PASS pw")[1] == b"+OK bob's maildrop has 3 messages (57 octets)\r\n"
    assert s.state == C.TRANSACTION
    stat, listing, uidl, retr1, retr3, top, top0 = run(
        s, b"STAT", b"LIST", b"UIDL 2", b"RETR 1", b"RETR 3", b"TOP 1 0", b"TOP 2 99")
    assert stat == b"+OK 3 57\r\n"
    assert listing == b"+OK 3 messages (57 octets)\r\n1 23\r\n2 20\r\n3 14\r\n.\r\n"
    assert uidl == b"+OK 2 u2\r\n"
    assert retr1 == b"+OK 23 octets\r\nSubject: a\r\n\r\n..dot\r\nx\r\n.\r\n"
    assert retr3 == b"+OK 14 octets\r\nno body line\r\n.\r\n"
    assert top == b"+OK top of message follows\r\nSubject: a\r\n\r\n.\r\n"
    assert top0 == b"+OK top of message follows\r\nSubject: b\r\n\r\nbare\r\n.\r\n"


def test_dele_marks_rset_unmarks_quit_deletes() -> None:
    drops = MemoryDrops({"bob@x.example": MSGS})
    locks = MaildropLocks()
    s = session(drops, locks)
    run(s, b"USER bob", b"PASS pw")
    assert run(s, b"DELE 2", b"DELE 2", b"LIST 2", b"STAT") == [
        b"+OK message 2 deleted\r\n", b"-ERR message already deleted\r\n",
        b"-ERR message already deleted\r\n", b"+OK 2 37\r\n"]
    assert run(s, b"RSET", b"DELE 1", b"DELE 3") == [
        b"+OK maildrop has 3 messages (57 octets)\r\n", b"+OK message 1 deleted\r\n",
        b"+OK message 3 deleted\r\n"]
    assert len(drops.listing("bob@x.example")) == 3 and locks.holder("bob@x.example") == "h/c1"
    step = s.handle(b"QUIT", 0.0)
    assert step.close == "quit" and step.reply.startswith(b"+OK") and b"(1 messages left)" in step.reply
    assert [m.uid for m in drops.listing("bob@x.example")] == ["u2"]
    assert len(locks) == 0 and [f.what for f in step.facts] == ["update"]


def test_lock_is_exclusive_and_freed_by_end() -> None:
    locks = MaildropLocks()
    a, b = session(locks=locks, conn="h/c1"), session(locks=locks, conn="h/c2")
    run(a, b"USER bob", b"PASS pw")
    step = b.handle(b"APOP bob " + apop_digest(STAMP, "pw").encode(), 0.0)
    assert step.reply == b"-ERR [IN-USE] maildrop already locked by another session\r\n"
    assert b.state == C.AUTHORIZATION
    a.end()
    assert b.handle(b"APOP bob " + apop_digest(STAMP, "pw").upper().encode(), 0.0).reply.startswith(b"+OK")


def test_failures_are_delayed_then_cut_off() -> None:
    s = session(throttle=LoginThrottle(ThrottleConfig(free=1, base_delay=3, max_delay=5, max_failures=4)))
    steps = [s.handle(ln, float(i)) for i, ln in enumerate([b"APOP bob 00", b"APOP ann 00",
                                                            b"APOP nobody 00", b"APOP bob 00"])]
    assert [st_.delay for st_ in steps] == [0.0, 3.0, 5.0, 5.0]
    assert [st_.close for st_ in steps] == ["", "", "", "cut-off"]
    assert [f.what for f in steps[-1].facts] == ["login-failed", "delay", "cut-off"]


def test_stls_only_when_offered_and_resets_user() -> None:
    assert run(session(), b"STLS") == [b"-ERR STLS not available\r\n"]
    s = session(tls=True)
    assert b"STLS\r\n" in s.handle(b"CAPA", 0.0).reply
    run(s, b"USER bob")
    step = s.handle(b"STLS", 0.0)
    assert step.start_tls and step.reply == b"+OK Begin TLS negotiation\r\n"
    s.tls_started()
    assert b"STLS" not in s.handle(b"CAPA", 0.0).reply
    assert run(s, b"PASS pw", b"STLS") == [b"-ERR send USER first\r\n", b"-ERR STLS not available\r\n"]


class BrokenDrops(MemoryDrops):
    def delete(self, mailbox, uids):
        raise OSError("disk gone")


def test_store_failure_at_quit_is_an_err_not_a_crash() -> None:
    s = session(BrokenDrops({"bob@x.example": MSGS}))
    run(s, b"USER bob", b"PASS pw", b"DELE 1")
    step = s.handle(b"QUIT", 0.0)
    assert step.reply.startswith(b"-ERR [SYS/TEMP]") and step.close
    assert [f.what for f in step.facts] == ["store-error"]
    assert len(s.locks) == 0


# -- random command streams ----------------------------------------------------

WORDS = [b"USER bob", b"USER ann", b"USER eve", b"PASS pw", b"PASS pw2", b"PASS bad",
         b"APOP bob " + apop_digest(STAMP, "pw").encode(), b"APOP bob 00", b"STLS", b"CAPA",
         b"STAT", b"LIST", b"LIST 1", b"UIDL", b"UIDL 3", b"RETR 1", b"RETR 2", b"TOP 1 1",
         b"TOP 3 0", b"DELE 1", b"DELE 2", b"DELE 3", b"DELE 4", b"RSET", b"NOOP", b"QUIT",
         b"", b"dele 0", b"LIST x", b"RETR 99999999999999999999999"]
LINES = st.one_of(st.sampled_from(WORDS), st.binary(max_size=60))


@settings(max_examples=400, deadline=None)
@given(st.lists(LINES, max_size=40))
def test_random_streams_never_crash_and_only_quit_changes_the_maildrop(lines) -> None:
    drops = MemoryDrops({"bob@x.example": MSGS, "ann": MSGS[:1]})
    s = session(drops, tls=True)
    quit_in_transaction = None
    for i, line in enumerate(lines):
        state, marked = s.state, set(s.deleted)
        step = s.handle(line, float(i))
        assert step.reply.startswith((b"+OK", b"-ERR ")) and step.reply.endswith(b"\r\n")
        assert all(len(ln) <= 512 for ln in step.reply.split(b"\r\n")[:1])
        if step.start_tls:
            s.tls_started()
        if step.close:
            if state == C.TRANSACTION:
                quit_in_transaction = (s.mailbox, marked)
            break
    s.end()
    assert len(s.locks) == 0
    for box, original in (("bob@x.example", MSGS), ("ann", MSGS[:1])):
        left = drops.listing(box)
        if quit_in_transaction and quit_in_transaction[0] == box:
            gone = {original[i].uid for i in quit_in_transaction[1]}
            assert left == [m for m in original if m.uid not in gone]
        else:
            assert left == original
