"""The roaming customer: a mail client away from home (seeds 002 and 003).

Before each message the client checks its POP3 mailbox on the relay host
(which is what opens POP-before-SMTP relaying), then connects straight to
the relay, as a mail client does (no queue, no MX lookup, no retry later):

* the ports are tried in order (``[25, 2525]``); a port that times out (an
  access network that filters port 25), refuses, resets, or turns out to be
  intercepted is followed by the next one;
* the banner is read as the seed's ``telnet your_smtp_server_name 25``
  test reads it: if it does not contain the expected word (the relay's host
  name unless ``expect_banner`` says otherwise), the access ISP redirected
  the port to its own server; the client logs ``intercepted`` with the
  banner and goes on as the user's program would (its AUTH then fails
  there), then falls back to the next port;
* with ``auth`` it authenticates (PLAIN or LOGIN) before MAIL; a failed
  AUTH or a refusal at the greeting, MAIL, RCPT or DATA from the real
  relay ends the attempt (another port of the same server would say the
  same), as does a message sent.

Every connection is a :class:`~mta.events.ConnectAttempt` (purpose
``submit`` or ``pop3``) and every outcome a
:class:`~mta.events.ClientSubmission`; the relay's own events say the rest.
"""
from __future__ import annotations

import asyncio
import base64
import random

import aiosmtplib

from mta import events as ev
from mta.context import HostContext
from mta.delivery.client import connect_outcome
from sim.actors import generate as g
from sim.scenario.traffic import RoamingCustomer

#: Outcomes after which the client tries the relay's next port (and any
#: outcome on a port found intercepted: the real relay was never reached).
FALL_BACK = ("timeout", "refused", "reset")


def attach(message: bytes, filename: str) -> bytes:
    """``message`` (headers and a text body) as multipart/mixed with a
    small attachment called ``filename`` (deterministic boundary)."""
    head, _, body = message.partition(b"\r\n\r\n")
    # The body's own MIME headers give way to the multipart's (one of each).
    head = b"\r\n".join(h for h in head.split(b"\r\n")
                         if not h.lower().startswith((b"mime-version:", b"content-type:")))
    boundary = b"mxsim-roaming-attachment"
    name = filename.replace("\\", "\\\\").replace('"', '\\"').encode("utf-8", "replace")
    return (head + b"\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\""
            + boundary + b"\"\r\n\r\n--" + boundary + b"\r\nContent-Type: text/plain\r\n\r\n"
            + body + b"\r\n--" + boundary + b"\r\nContent-Type: application/octet-stream\r\n"
            + b"Content-Disposition: attachment; filename=\"" + name + b"\"\r\n"
            + b"Content-Transfer-Encoding: base64\r\n\r\n"
            + base64.b64encode(b"MZ" + b"\0" * 64) + b"\r\n--" + boundary + b"--\r\n")


class RoamingCustomerActor:
    """Runs one ``roaming-customer`` entry of a scenario on its host."""

    def __init__(self, spec: RoamingCustomer, ctx: HostContext, rng: random.Random, *,
                 name: str, addresses: dict[str, str], stop: float) -> None:
        self.spec = spec
        self.ctx = ctx
        self.rng = rng
        self.name = name
        self.relay_ip = addresses[spec.relay]
        self.expect = spec.expect_banner or spec.relay
        self.stop = spec.stop if spec.stop is not None else stop
        self.sent = 0
        self._intercepted = False     # the last port tried was not the relay

    # -- the record ----------------------------------------------------------
    def _connect(self, port: int, outcome: str, purpose: str, greeting: str = "") -> None:
        self.ctx.sink.emit(ev.ConnectAttempt(
            t=self.ctx.now(), host=self.ctx.hostname, dest_host=self.spec.relay,
            dest_ip=self.relay_ip, port=port, outcome=outcome, purpose=purpose,
            greeting=greeting[:200]))

    def _result(self, service: str, port: int, outcome: str, code: int = 0,
                detail: str = "", mail_from: str = "") -> str:
        files = (self.spec.attachment,) if service == "smtp" and self.spec.attachment else ()
        self.ctx.sink.emit(ev.ClientSubmission(
            t=self.ctx.now(), host=self.ctx.hostname, actor=self.name, service=service,
            dest_host=self.spec.relay, dest_ip=self.relay_ip, port=port, outcome=outcome,
            code=code, detail=detail[:300], mail_from=mail_from, attachments=files))
        return outcome

    # -- the run -------------------------------------------------------------
    async def run(self) -> None:
        spec = self.spec
        loop = asyncio.get_running_loop()
        for n, (t, envelope) in enumerate(self.messages(), 1):
            await asyncio.sleep(max(t - loop.time(), 0.0))
            mail_from, rcpts, size = g.draw_envelope(self.rng, envelope)
            data = g.build_message(mail_from=mail_from, rcpts=rcpts, size=size,
                                   msgid=f"{self.name}.{n}@{self.ctx.hostname}", t=loop.time(),
                                   subject=f"{self.name} message {n}")
            if spec.attachment is not None:
                data = attach(data, spec.attachment)
            if spec.pop3 is not None and (n == 1 or spec.pop3.check == "every-message"):
                await self.check_mail()
            await self.send(mail_from, rcpts, data)

    def messages(self):
        """``(time, spec to draw the envelope from)`` of each message, in time order."""
        return ((t, self.spec) for t in g.schedule(self.rng, self.spec, self.stop))

    def mail_options(self, client: aiosmtplib.SMTP, data: bytes) -> list[str]:
        """ESMTP parameters of MAIL FROM (none: the client declares nothing)."""
        return []

    async def transact(self, client: aiosmtplib.SMTP, port: int, mail_from: str,
                       rcpts: list[str], data: bytes) -> str:
        """MAIL, RCPT each, DATA: the first refusal ends the attempt."""
        for verb, call in (("MAIL", lambda: client.mail(
                               mail_from, options=self.mail_options(client, data))),
                           *((f"RCPT {r}", lambda r=r: client.rcpt(r)) for r in rcpts),
                           ("DATA", lambda: client.data(data))):
            try:
                await call()
            except aiosmtplib.SMTPResponseException as exc:
                return self._result("smtp", port, "rejected", exc.code,
                                    f"{verb}: {exc.message}", mail_from)
        return self._result("smtp", port, "sent", 250, f"{len(rcpts)} recipients", mail_from)

    async def check_mail(self) -> str:
        """USER/PASS, STAT, QUIT on the relay host's POP3 server."""
        pop = self.spec.pop3
        assert pop is not None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.relay_ip, pop.port), self.spec.timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            outcome = connect_outcome(exc)
            self._connect(pop.port, outcome, "pop3")
            return self._result("pop3", pop.port, outcome)
        try:
            greeting = (await asyncio.wait_for(reader.readline(), self.spec.timeout)).decode(
                "ascii", "replace").strip()
            self._connect(pop.port, "connected", "pop3", greeting)
            replies = []
            for line in (f"USER {pop.user}", f"PASS {pop.password}", "STAT", "QUIT"):
                writer.write(line.encode("utf-8") + b"\r\n")
                replies.append((await asyncio.wait_for(reader.readline(), self.spec.timeout))
                               .decode("ascii", "replace").strip())
                if not replies[-1].startswith("+OK"):
                    break
            ok = len(replies) >= 2 and replies[1].startswith("+OK")
            return self._result("pop3", pop.port, "checked" if ok else "login-failed",
                                detail=replies[-1] if replies else "")
        except (OSError, asyncio.TimeoutError, ConnectionError) as exc:
            return self._result("pop3", pop.port, connect_outcome(exc))
        finally:
            writer.close()

    async def send(self, mail_from: str, rcpts: list[str], data: bytes) -> str:
        """Try each port in order until one sends or refuses for good."""
        outcome = "error"
        for port in self.spec.ports:
            self._intercepted = False
            outcome = await self._send_on(port, mail_from, rcpts, data)
            if outcome not in FALL_BACK and not self._intercepted:
                break
        if outcome == "sent":
            self.sent += 1
        return outcome

    async def _send_on(self, port: int, mail_from: str, rcpts: list[str], data: bytes) -> str:
        spec = self.spec
        client = aiosmtplib.SMTP(hostname=self.relay_ip, port=port,
                                 local_hostname=self.ctx.hostname, timeout=spec.timeout,
                                 start_tls=False, use_tls=False)
        try:
            greeting = await client.connect()
        except aiosmtplib.SMTPConnectResponseError as exc:     # a 554 greeting
            self._connect(port, "connected", "submit", f"{exc.code} {exc.message}")
            return self._result("smtp", port, "rejected", exc.code, f"greeting: {exc.message}",
                                mail_from)
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:
            outcome = connect_outcome(exc)
            self._connect(port, outcome, "submit")
            return self._result("smtp", port, outcome, mail_from=mail_from)
        self._connect(port, "connected", "submit", greeting.message)
        intercepted = self.expect.lower() not in greeting.message.lower()
        self._intercepted = intercepted
        if intercepted:
            self._result("smtp", port, "intercepted", greeting.code,
                         f"banner {greeting.message!r} does not name {self.expect}", mail_from)
        try:
            await client.ehlo()
            if spec.auth is not None:
                login = (client.auth_login if spec.auth.mechanism == "LOGIN"
                         else client.auth_plain)
                try:
                    await login(spec.auth.user, spec.auth.password)
                except aiosmtplib.SMTPAuthenticationError as exc:
                    why = ("intercepted: " if intercepted else "") + exc.message
                    return self._result("smtp", port, "auth-failed", exc.code, why, mail_from)
            return await self.transact(client, port, mail_from, rcpts, data)
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:
            return self._result("smtp", port, connect_outcome(exc), mail_from=mail_from)
        finally:
            if client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
                    client.close()
