"""One behaviour suite for the receiving server, run on two backends: the
simulated world (virtual time, simulated network) and real loopback sockets.

:class:`ServerSuite` holds the tests; each subclass names a bed from
tests/helpers/server.py.  A client is one asyncio coroutine given a
:class:`~helpers.server.Peer`, so the very same client code talks to both
servers, and both must answer the same.
"""
from __future__ import annotations

import dataclasses

import aiosmtplib
import pytest

from helpers.server import NON_RELAYING, LoopbackBed, Peer, SimBed, relay_probe, replies
from mta.events import ConnectionClosed, ConnectionOpened, DeliveredToMailbox, MessageAccepted, PolicyDecision
from mta.roles import CustomerMailServer, PrimaryMx, QueueingServer, SmartHost

CUSTOMER = CustomerMailServer(
    hostname="mail.customer.example", local_domains=("customer.example",),
    mailboxes=tuple(f"u{i}@customer.example" for i in range(40)),
    max_message_size=100_000, max_recipients=30, banner="mail.customer.example ESMTP Customer")
BIG = b"Subject: big\r\n\r\n" + (b"z" * 998 + b"\r\n") * 300      # ~300 KB, limit 100 KB


async def ehlo_lines(peer: Peer) -> tuple[tuple[int, str], tuple[int, str]]:
    c = await peer.open()
    greeting = await c.reply()
    ehlo = await c.command(b"EHLO client.example.org")
    await c.command(b"QUIT")
    c.close()
    return greeting, ehlo


async def script(peer: Peer, *commands: bytes) -> list[int]:
    """The greeting's code, then one reply code per command line."""
    c = await peer.open()
    codes = [(await c.reply())[0]]
    for cmd in commands:
        codes.append((await c.command(cmd))[0])
    c.close()
    return codes


class ServerSuite:
    """Behaviour every backend must show; subclasses set ``bed``."""

    bed: SimBed | LoopbackBed

    def test_greeting_and_connection_events(self) -> None:
        run = self.bed.run(CUSTOMER, ehlo_lines)
        (code, text), _ = run.result
        assert (code, text) == (220, "mail.customer.example ESMTP Customer")
        first = replies(run.events)[0]
        assert (first.command, first.code, first.client_ip) == ("CONNECT", 220, self.bed.feed_ip)
        kinds = [type(e) for e in run.events if isinstance(e, (ConnectionOpened, ConnectionClosed))]
        assert kinds == [ConnectionOpened, ConnectionClosed]
        assert [e.reason for e in run.events if isinstance(e, ConnectionClosed)] == ["quit"]

    def test_ehlo_keywords_follow_the_role(self) -> None:
        (_, (code, text)) = self.bed.run(CUSTOMER, ehlo_lines).result
        assert code == 250
        assert text.split("\n") == ["mail.customer.example", "PIPELINING", "SIZE 100000",
                                    "ENHANCEDSTATUSCODES", "8BITMIME", "HELP"]
        queueing = QueueingServer(hostname="q.isp.example", relay_domains=("dial.example",))
        kws = self.bed.run(queueing, ehlo_lines).result[1][1].split("\n")
        assert "ETRN" in kws and not any(k.startswith("AUTH") for k in kws)
        smart = SmartHost(hostname="smtp.isp.example", trusted_networks=("10.0.0.0/8",),
                          users={"u": "p"}, allow_auth_relay=True)
        kws = self.bed.run(smart, ehlo_lines).result[1][1].split("\n")
        assert "AUTH LOGIN PLAIN" in kws and "ETRN" not in kws

    def test_command_order(self) -> None:
        smart = SmartHost(hostname="smtp.isp.example", trusted_networks=("0.0.0.0/0",),
                          users={"u": "p"}, allow_auth_relay=True)
        codes = self.bed.run(smart, lambda p: script(
            p, b"MAIL FROM:<a@client.example>", b"RCPT TO:<x@far.example>", b"DATA",
            b"EHLO host.client.example", b"RCPT TO:<x@far.example>", b"DATA",
            b"MAIL FROM:<a@client.example>", b"MAIL FROM:<b@client.example>", b"DATA",
            b"AUTH PLAIN AHUAcA==", b"RCPT TO:<x@far.example>", b"QUIT")).result
        assert codes == [220, 503, 503, 503, 250, 503, 503, 250, 503, 503, 503, 250, 221]

    def test_lockdown_refuses_a_stranger_and_admits_the_feed(self) -> None:
        role = CustomerMailServer(hostname="mail.customer.example",
                                  local_domains=("customer.example",),
                                  mailboxes=("u1@customer.example",),
                                  allowlist=(self.bed.feed_ip,), allowlist_loopback=False)
        commands = (b"EHLO spammer.example", b"MAIL FROM:<a@b.example>", b"XYZZY", b"QUIT")
        run = self.bed.run(role, lambda p: script(p, *commands), peer_ip=self.bed.stranger_ip)
        assert run.result == [554, 503, 503, 503, 221]
        first = replies(run.events)[0]
        assert first.text == f"5.7.1 <[{self.bed.stranger_ip}]>: Client host rejected: Access denied"
        assert (first.stage, first.client_ip) == ("allowlist", self.bed.stranger_ip)
        assert self.bed.run(role, lambda p: script(p, *commands)).result == [220, 250, 250, 502, 221]

    @pytest.mark.parametrize("name", sorted(set(NON_RELAYING) - {"relay"}))
    def test_sixteen_relay_probes_refused(self, name: str) -> None:
        role = NON_RELAYING[name]
        run = self.bed.run(role, lambda p: relay_probe(p, role.hostname),
                           peer_ip=self.bed.stranger_ip)
        rcpt = replies(run.events, "RCPT")
        assert len(rcpt) == 16 and {e.client_ip for e in rcpt} == {self.bed.stranger_ip}
        assert run.result == [554] * 16 and {e.stage for e in rcpt} == {"relay"}

    def test_an_auth_only_relay_answers_530_to_mail_before_auth(self) -> None:
        # RFC 4954 §6: "530 5.7.0 Authentication required ... SHOULD be returned by any
        # command other than AUTH, EHLO, HELO, NOOP, RSET, or QUIT".
        role = NON_RELAYING["relay"]
        commands = (b"EHLO probe.nmap.example", b"MAIL FROM:<a@b.example>",
                    b"RCPT TO:<x@far.example>", b"QUIT")
        run = self.bed.run(role, lambda p: script(p, *commands), peer_ip=self.bed.stranger_ip)
        assert run.result == [220, 250, 530, 503, 221]
        mail = replies(run.events, "MAIL")[0]
        assert (mail.text, mail.stage) == ("5.7.0 Authentication required", "auth-required")

    def test_size_limit_declared_and_actual(self) -> None:
        async def client(peer: Peer):
            c = peer.smtp("feed.isp.example")
            await c.connect()
            await c.ehlo()
            declared = await c.execute_command(b"MAIL", b"FROM:<a@sender.example> SIZE=100001")
            await c.mail("a@sender.example")
            await c.rcpt("u1@customer.example")
            with pytest.raises(aiosmtplib.SMTPDataError) as big:
                await c.data(BIG)
            await c.mail("a@sender.example")
            await c.rcpt("u1@customer.example")
            small = await c.data(b"Subject: small\r\n\r\nok\r\n")
            await c.quit()
            return (declared.code, declared.message), (big.value.code, big.value.message), small.code

        run = self.bed.run(CUSTOMER, client)
        declared, big, small = run.result
        assert declared == big == (552, "5.3.4 Message size exceeds fixed limit")
        assert small == 250
        assert run.server.data_peak <= 100_000          # the excess was never held
        end = replies(run.events, "DATA_END")
        assert [(e.code, e.stage) for e in end] == [(552, "size"), (250, "")]
        assert end[0].rcpts == ("u1@customer.example",)
        assert len([e for e in run.events if isinstance(e, MessageAccepted)]) == 1

    @pytest.mark.parametrize("mode", ["conformant", "documented"])
    def test_recipient_limit(self, mode: str) -> None:
        role = dataclasses.replace(CUSTOMER, recipient_limit_mode=mode)
        rcpts = [f"u{i}@customer.example" for i in range(35)]

        async def client(peer: Peer):
            c = peer.smtp("feed.isp.example")
            await c.connect()
            await c.mail("a@sender.example")
            codes = [(await c.execute_command(b"RCPT", f"TO:<{r}>".encode())).code for r in rcpts]
            end = (await c.data(b"Subject: many\r\n\r\nx\r\n")).code
            await c.quit()
            return codes, end

        run = self.bed.run(role, client)
        codes, end = run.result
        assert end == 250
        delivered = [e.rcpt for e in run.events if isinstance(e, DeliveredToMailbox)]
        assert delivered == rcpts[:30]
        dropped = [e.detail for e in run.events
                   if isinstance(e, PolicyDecision) and e.decision == "dropped-over-limit"]
        if mode == "conformant":
            assert codes == [250] * 30 + [452] * 5 and dropped == []
            assert replies(run.events, "RCPT")[-1].text == "4.5.3 Error: too many recipients"
        else:
            assert codes == [250] * 35
            assert dropped == rcpts[30:]             # silent loss, visible in the log

    def test_rset_forgets_the_transaction(self) -> None:
        run = self.bed.run(CUSTOMER, lambda p: script(
            p, b"EHLO client.example.org", b"MAIL FROM:<a@sender.example>",
            b"RCPT TO:<u1@customer.example>", b"RSET", b"RCPT TO:<u1@customer.example>",
            b"DATA", b"MAIL FROM:<b@sender.example>", b"QUIT"))
        assert run.result == [220, 250, 250, 250, 250, 503, 503, 250, 221]
        rset = replies(run.events, "RSET")[0]
        assert (rset.text, rset.mail_from, rset.rcpts) == ("2.0.0 Ok", None, ())
        assert replies(run.events, "MAIL")[-1].mail_from == "b@sender.example"

    def test_quit_closes_and_junk_after_quit_still_quits(self) -> None:
        async def client(peer: Peer):
            c = await peer.open()
            await c.reply()
            bye = await c.command(b"QUIT now please")
            closed = await c.closed()
            c.close()
            return bye, closed

        run = self.bed.run(CUSTOMER, client)
        assert run.result == ((221, "2.0.0 Bye"), True)
        assert [e.reason for e in run.events if isinstance(e, ConnectionClosed)] == ["quit"]

    def test_idle_timeout_says_421_then_closes(self) -> None:
        role = PrimaryMx(hostname="mx.example.net", local_domains=("example.net",),
                         idle_timeout=self.bed.idle_timeout)

        async def client(peer: Peer):
            c = await peer.open()
            await c.reply()
            await c.command(b"EHLO client.example.org")
            line = await c.reader.readline()      # nothing sent: the server gives up
            rest = await c.reader.read()
            c.close()
            return line, rest

        run = self.bed.run(role, client)
        assert run.result == (b"421 4.4.2 mx.example.net Error: timeout exceeded\r\n", b"")
        assert [e.reason for e in run.events if isinstance(e, ConnectionClosed)] == ["timeout"]
        assert replies(run.events)[-1].command == "TIMEOUT"
        if run.elapsed is not None:               # virtual time is exact
            assert run.elapsed == pytest.approx(self.bed.idle_timeout, abs=0.05)

    def test_pipelined_commands_are_answered_in_order(self) -> None:
        async def client(peer: Peer):
            c = await peer.open()
            c.send(b"EHLO client.example.org\r\nMAIL FROM:<a@b.example>\r\n"
                   b"RCPT TO:<nobody@customer.example>\r\nRCPT TO:<u1@customer.example>\r\n"
                   b"DATA\r\nSubject: one\r\n\r\nbody\r\n.\r\nNOOP\r\nQUIT\r\n")
            codes = [(await c.reply())[0] for _ in range(9)]   # greeting unread until now
            c.close()
            return codes

        run = self.bed.run(CUSTOMER, client)
        assert run.result == [220, 250, 250, 550, 250, 354, 250, 250, 221]
        assert [e.command for e in replies(run.events)] == [
            "CONNECT", "EHLO", "MAIL", "RCPT", "RCPT", "DATA", "DATA_END", "NOOP", "QUIT"]
        assert [e.rcpt for e in run.events if isinstance(e, DeliveredToMailbox)] == \
            ["u1@customer.example"]


class TestSimulated(ServerSuite):
    bed = SimBed()


class TestLoopback(ServerSuite):
    bed = LoopbackBed()
