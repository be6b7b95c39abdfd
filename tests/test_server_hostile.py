"""Hostile input: malformed commands, over-long lines, NUL bytes, pipelining
abuse, smuggling attempts.  Every reply is checked, and after each stream
the server must still serve a clean transaction."""
from __future__ import annotations

import asyncio
import dataclasses

from mta.events import ComponentError, MessageAccepted
from mta.roles import CustomerMailServer
from helpers.server import RawClient, replies, run_loopback

ROLE = CustomerMailServer(hostname="mail.customer.example", local_domains=("customer.example",),
                          mailboxes=("u1@customer.example", "u2@customer.example"),
                          max_message_size=100_000)

# (bytes sent, expected reply code) pairs, after the greeting, in one session.
MALFORMED = [
    (b"\r\n", 500),                                   # empty line
    (b"MAIL FROM:<a@b.example>\r\n", 503),            # before HELO
    (b"HELO\r\n", 501),
    (b"EHLO\r\n", 501),
    (b"XYZZY plugh\r\n", 502),
    (b"NOOP\x00hidden\r\n", 500),                     # NUL byte
    (b"NOOP \xff\xfe\r\n", 500),                      # 8-bit in a command
    (b"NOOP " + b"x" * 5000 + b"\r\n", 500),          # over-long line, read and dropped
    (b"EHLO client.example.org\r\n", 250),
    (b"MAIL FROM:\r\n", 501),
    (b"MAIL TO:<a@b.example>\r\n", 501),
    (b"MAIL FROM:<a@b.example\r\n", 501),             # unterminated path
    (b"MAIL FROM:<a@b.example> SIZE=abc\r\n", 501),
    (b"MAIL FROM:<a@b.example> FROB=1\r\n", 555),
    (b"RCPT TO:<u1@customer.example>\r\n", 503),      # RCPT before MAIL
    (b"DATA\r\n", 503),
    (b"MAIL FROM:<a@b.example>\r\n", 250),
    (b"MAIL FROM:<a@b.example>\r\n", 503),            # nested MAIL
    (b"RCPT TO:<>\r\n", 501),
    (b"RCPT TO:\r\n", 501),
    (b"RCPT TO:<u1@customer.example> NOTIFY=NEVER\r\n", 555),
    (b"DATA\r\n", 503),                               # no recipient yet
    (b"RCPT TO:<u1@customer.example>\r\n", 250),
    (b"DATA now\r\n", 501),
    (b"ETRN customer.example\r\n", 502),              # not offered by this role
    (b"AUTH PLAIN AAAA\r\n", 503),                    # AUTH not enabled
    (b"VRFY u1\r\n", 252),
    (b"EXPN staff\r\n", 502),
    (b"RSET extra\r\n", 501),
    (b"RSET\r\n", 250),
    (b"NOOP\n", 250),                                 # bare LF line ending
    (b"QUIT\r\n", 221),
]


def clean_session(port: int) -> int:
    c = RawClient(port)
    codes = [c.reply()[0]]
    for cmd in (b"EHLO client.example.org\r\n", b"MAIL FROM:<a@b.example>\r\n",
                b"RCPT TO:<u1@customer.example>\r\n", b"DATA\r\n",
                b"Subject: fine\r\n\r\nok\r\n.\r\n", b"QUIT\r\n"):
        c.send(cmd)
        codes.append(c.reply()[0])
    c.close()
    assert codes == [220, 250, 250, 250, 354, 250, 221], codes
    return 1


def run(streams, role=ROLE):
    async def go(port, server):
        def client():
            out = [s(port) for s in streams]
            clean_session(port)
            return out
        return await asyncio.to_thread(client)
    return run_loopback(role, go)


def test_malformed_commands_get_the_right_reply_and_server_keeps_serving() -> None:
    def stream(port):
        c = RawClient(port)
        got = [c.reply()[0]]
        for data, _ in MALFORMED:
            c.send(data)
            got.append(c.reply()[0])
        assert c.closed()
        c.close()
        return got

    # Postfix's hard error limit (20) would end this session early; raise it.
    (got,), sink, _ = run([stream], dataclasses.replace(ROLE, hard_error_limit=100))
    assert got == [220] + [code for _, code in MALFORMED]
    assert not sink.of_kind(ComponentError)
    first_conn = [e for e in replies(sink) if e.conn.endswith("/c1")]
    assert [e.code for e in first_conn] == got          # every reply is on the record
    assert sum("NUL" in e.text for e in first_conn) == 1


def test_pipelined_before_greeting_and_smuggling_attempt() -> None:
    session = (b"EHLO client.example.org\r\nMAIL FROM:<a@b.example>\r\n"
               b"RCPT TO:<u1@customer.example>\r\nDATA\r\n"
               b"Subject: one\r\n\r\nbody\n.\nMAIL FROM:<evil@b.example>\n"   # bare-LF dot: not an end
               b"..leading dot\r\n.\r\nQUIT\r\n")

    def stream(port):
        c = RawClient(port)
        c.send(session)                 # everything at once, greeting unread
        codes = [c.reply()[0] for _ in range(7)]
        c.close()
        return codes

    (codes,), sink, server = run([stream])
    assert codes == [220, 250, 250, 250, 354, 250, 221]
    accepted = sink.of_kind(MessageAccepted)
    assert len(accepted) == 2 and accepted[0].mail_from == "a@b.example"   # + the clean session
    box = [m.data for m in server.sink.messages("u1@customer.example")]
    # Only CRLF starts a line: the bare-LF "dot" lines are content, unstuffed nowhere.
    assert b"body\n.\nMAIL FROM:<evil@b.example>\n..leading dot\r\n" in box[0]


def test_rcpt_refused_then_pipelined_body_is_read_as_commands_until_error_limit() -> None:
    body = b"".join(b"line %d of a body nobody wanted\r\n" % i for i in range(30))

    def stream(port):
        c = RawClient(port)
        c.send(b"EHLO client.example.org\r\nMAIL FROM:<a@b.example>\r\n"
               b"RCPT TO:<x@elsewhere.example>\r\nDATA\r\n" + body + b".\r\nQUIT\r\n")
        got = []
        try:
            while True:
                got.append(c.reply()[0])
        except ConnectionError:
            pass
        c.close()
        return got

    (got,), sink, _ = run([stream])
    # greeting, EHLO, MAIL, RCPT refused, DATA 503, then the body lines are
    # unknown commands until the hard error limit (20) says goodbye.
    assert got[:5] == [220, 250, 250, 554, 503]
    assert got[-1] == 421 and len(got) == 5 + 18 + 1
    closed = [e for e in sink.events if getattr(e, "reason", "") == "too-many-errors"]
    assert len(closed) == 1


def test_header_pasted_as_command_ends_session_and_huge_line_is_survived() -> None:
    def stream(port):
        c = RawClient(port)
        c.reply()
        c.send(b"NOOP " + b"z" * 200_000 + b"\r\n")      # far beyond the reader limit
        first = c.reply()
        c.send(b"Subject: hello\r\n")
        second = c.reply()
        closed = c.closed()
        c.close()
        return first, second, closed

    ((first, second, closed),), sink, _ = run([stream])
    assert first[0] == 500 and second == (221, "2.7.0 Error: I can break rules, too. Goodbye.")
    assert closed


def test_client_vanishes_mid_data_without_component_error() -> None:
    def stream(port):
        c = RawClient(port)
        c.send(b"EHLO client.example.org\r\nMAIL FROM:<a@b.example>\r\n"
               b"RCPT TO:<u1@customer.example>\r\nDATA\r\nSubject: cut\r\n\r\nhalf a mess")
        codes = [c.reply()[0] for _ in range(5)]
        c.close()
        return codes

    (codes,), sink, _ = run([stream])
    assert codes == [220, 250, 250, 250, 354]
    assert not sink.of_kind(ComponentError)
    assert len(sink.of_kind(MessageAccepted)) == 1        # only the clean session's
    assert [e.reason for e in sink.events if type(e).__name__ == "ConnectionClosed"][0] in ("eof", "reset")
