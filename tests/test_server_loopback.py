"""The receiving server on real loopback sockets, with smtplib and aiosmtplib,
for what needs real sockets or blocking clients.  What both backends must do
alike is in tests/test_server_conformance.py."""
from __future__ import annotations

import asyncio
import smtplib

import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP

from mta.events import ConnectionClosed, ConnectionOpened, DeliveredToMailbox
from mta.policy import PolicyChain, RelayControl, SizeLimit
from mta.roles import CustomerMailServer, PrimaryMx, SmartHost
from mta.smtp.config import ServerConfig
from mta.smtp.server import SmtpServer
from helpers.server import RawClient, replies, run_loopback

CUSTOMER = CustomerMailServer(
    hostname="mail.customer.example", local_domains=("customer.example",),
    mailboxes=tuple(f"u{i}@customer.example" for i in range(40)),
    max_message_size=100_000, max_recipients=30, banner="mail.customer.example ESMTP Customer")


def smtp(port: int) -> smtplib.SMTP:
    return smtplib.SMTP("127.0.0.1", port, local_hostname="client.example.org", timeout=10)


def test_every_reply_the_client_saw_is_an_event() -> None:
    async def go(port, server):
        seen = []
        c = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, local_hostname="client.example.org")
        r = await c.connect()          # aiosmtplib also sends EHLO here
        seen += [r.code, c.last_ehlo_response.code]
        for coro in (c.mail("a@sender.example"), c.rcpt("u1@customer.example"),
                     c.noop(), c.rset(), c.mail("b@sender.example")):  # noqa: E127
            seen.append((await coro).code)
        for bad in ("nobody@customer.example", "x@elsewhere.example"):
            with pytest.raises(aiosmtplib.SMTPRecipientRefused) as info:
                await c.rcpt(bad)
            seen.append(info.value.code)
        seen.append((await c.rcpt("u2@customer.example")).code)
        seen.append((await c.data(b"Subject: t\r\n\r\nhello\r\n")).code)
        seen.append((await c.quit()).code)
        return seen

    seen, sink, _ = run_loopback(CUSTOMER, go)
    got = [e.code for e in replies(sink) if e.command != "DATA"]  # 354 is consumed inside data()
    assert got == seen == [220, 250, 250, 250, 250, 250, 250, 550, 554, 250, 250, 221]
    rc = replies(sink, "RCPT")
    assert [(e.argument, e.stage) for e in rc] == [
        ("TO:<u1@customer.example>", "relay"), ("TO:<nobody@customer.example>", "relay"),
        ("TO:<x@elsewhere.example>", "relay"), ("TO:<u2@customer.example>", "relay")]
    assert all(e.client_ip == "127.0.0.1" and e.helo == "client.example.org" for e in rc)
    assert rc[-1].mail_from == "b@sender.example" and rc[-1].rcpts == ()
    end = replies(sink, "DATA_END")[0]
    assert end.rcpts == ("u2@customer.example",)     # only the reply to the message lists them
    assert end.text.startswith("2.0.0 Ok: queued as mail.customer.example/m")
    kinds = [type(e) for e in sink.events]
    assert kinds[0] is ConnectionOpened and kinds[-1] is ConnectionClosed
    assert sink.events[-1].reason == "quit"
    assert [e.rcpt for e in sink.of_kind(DeliveredToMailbox)] == ["u2@customer.example"]


def test_command_limits_are_per_server_not_per_class() -> None:
    line = b"NOOP " + b"x" * 900 + b"\r\n"

    async def go(port_a, server_a):
        # A second server with a larger limit, in the same process and loop.
        ctx = server_a.ctx
        big = SmtpServer(ctx, PolicyChain([SizeLimit(100_000), RelayControl()]), None,
                         ServerConfig(command_size_limit=2048))
        srv = await big.start("127.0.0.1", 0)
        port_b = srv.sockets[0].getsockname()[1]

        def client():
            out = []
            for port in (port_a, port_b, port_a):
                c = RawClient(port)
                c.reply()
                c.send(b"EHLO client.example.org\r\n")
                c.reply()
                c.send(line)
                out.append(c.reply()[0])
                c.send(b"QUIT\r\n")
                c.reply()
                c.close()
            return out
        try:
            return await asyncio.to_thread(client)
        finally:
            await big.stop()

    before = dict(SMTP.command_size_limits)     # other tests' plain aiosmtpd servers use it
    codes, _, _ = run_loopback(PrimaryMx(hostname="mx.example.net", local_domains=("example.net",)), go)
    assert codes == [500, 250, 500]
    assert dict(SMTP.command_size_limits) == before  # the class-level dict is never touched


def test_auth_inside_transaction_is_503_and_auth_opens_relay() -> None:
    role = SmartHost(hostname="smtp.isp.example", users={"cust": "secret"}, allow_auth_relay=True)

    def client(port):
        s = smtplib.SMTP("127.0.0.1", port, local_hostname="pc.customer.example", timeout=10)
        s.ehlo()
        out = [s.mail("a@customer.example")[0], s.rcpt("x@elsewhere.example")[0]]
        out.append(s.docmd("AUTH", "PLAIN AGN1c3QAc2VjcmV0")[0])   # \0cust\0secret
        s.rset()
        s.login("cust", "secret")
        out += [s.mail("a@customer.example")[0], s.rcpt("x@elsewhere.example")[0]]
        out.append(s.docmd("AUTH", "PLAIN AGN1c3QAc2VjcmV0")[0])
        s.quit()
        return out

    async def go(port, server):
        return await asyncio.to_thread(client, port)

    codes, sink, _ = run_loopback(role, go)
    assert codes == [250, 554, 503, 250, 250, 503]
    auth = replies(sink, "AUTH")
    assert auth[0].text == "5.5.1 Error: MAIL transaction in progress"
    assert any(e.code == 235 for e in auth)
    assert all("c2VjcmV0" not in e.argument for e in replies(sink))   # no credentials logged


def test_many_recipients_over_limit_do_not_count_as_errors() -> None:
    # 60 recipients against a limit of 30: 30 x 452 would pass the hard error
    # limit (20), but Postfix does not count them (recipient overshoot).
    role = CustomerMailServer(hostname="mail.customer.example", local_domains=("customer.example",),
                              mailboxes=tuple(f"u{i}@customer.example" for i in range(60)),
                              max_recipients=30)

    def client(port):
        s = smtp(port)
        s.ehlo()
        s.mail("a@sender.example")
        codes = [s.rcpt(f"u{i}@customer.example")[0] for i in range(60)]
        end = s.data(b"Subject: many\r\n\r\nx\r\n")[0]
        s.quit()
        return codes, end

    async def go(port, server):
        return await asyncio.to_thread(client, port)

    (codes, end), sink, _ = run_loopback(role, go)
    assert codes == [250] * 30 + [452] * 30 and end == 250
    assert len(sink.of_kind(DeliveredToMailbox)) == 30


def test_command_call_limit_and_stage_headers_reach_the_message() -> None:
    from mta.policy import Decision, Stage

    class Stamp(Stage):
        name = "stamp"

        def on_rcpt(self, facts, rcpt):
            return Decision.accept(self.name, headers=(("X-Stamp", rcpt.mailbox),))

    role = PrimaryMx(hostname="mx.example.net", local_domains=("example.net",), after_relay=(Stamp(),))

    def make(ctx):
        from mta.mailbox import MailboxStore
        server = role.build_server(ctx, MailboxStore(ctx))
        server.config.command_call_limits = {"NOOP": 2}
        return server

    def client(port):
        c = RawClient(port)
        c.reply()
        out = []
        for cmd in (b"EHLO c.example.org", b"MAIL FROM:<a@b.example>", b"RCPT TO:<u@example.net>",
                    b"DATA", b"Subject: s\r\n\r\nbody\r\n.", b"NOOP", b"NOOP", b"NOOP"):
            c.send(cmd + b"\r\n")
            out.append(c.reply()[0])
        closed = c.closed()
        c.close()
        return out, closed

    async def go(port, server):
        return await asyncio.to_thread(client, port), server.sink

    ((codes, closed), store), sink, _ = run_loopback(make, go)
    assert codes == [250, 250, 250, 354, 250, 250, 250, 421] and closed
    assert replies(sink)[-1].text == "4.7.0 NOOP sent too many times"
    assert b"X-Stamp: u@example.net\r\n" in store.messages("u@example.net")[0].data
