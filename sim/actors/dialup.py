"""The dial-up customer: on each link-up, ask the exchangers for its mail.

Its link schedule is its host's (the world brings the link up and down).
On every link-up, after ``delay``, it does what ``on_connect`` says:

* ``etrn``: an SMTP session to each exchanger with ``ETRN`` for each domain
  (RFC 1985: ``#domain``, ``@domain`` or the plain form);
* ``finger``: ``finger domain@exchanger``, i.e. a connection to the
  exchanger's port 79 carrying the domain (SMTP-on-Demand, RFC 1288);
* ``wait``: nothing; the exchangers' probes must notice the link.

Exchangers are the listed hosts, or every MX host of the domain except the
customer's own host.  Whether mail then arrives is for the exchangers and
the checks to show; this actor only records what it asked and the answers.
"""
from __future__ import annotations

import asyncio
import random

import aiosmtplib

from mta import events as ev
from mta.context import HostContext
from mta.delivery.client import connect_outcome
from mta.dns.resolver import DnsError
from sim.scenario.traffic import DialupCustomer

SESSION_TIMEOUT = 60.0
FINGER_PORT = 79


class DialupCustomerActor:
    """Runs one ``dialup-customer`` entry; the runner calls :meth:`link_up`."""

    def __init__(self, spec: DialupCustomer, ctx: HostContext, rng: random.Random, *,
                 addresses: dict[str, str], stop: float, finger_port: int = FINGER_PORT) -> None:
        self.spec = spec
        self.ctx = ctx
        self.rng = rng
        self.addresses = addresses
        self.stop = spec.stop if spec.stop is not None else stop
        self.finger_port = finger_port
        self.triggers = 0
        self.replies: list[tuple[str, str, int, str]] = []   # (exchanger, domain, code, text)

    async def run(self, initially_up: bool) -> None:
        """Trigger once at the start if the link is already up then."""
        if initially_up:
            await self.on_link_up()

    async def on_link_up(self) -> None:
        loop = asyncio.get_running_loop()
        if self.spec.on_connect == "wait" or not (self.spec.start <= loop.time() < self.stop):
            return
        await asyncio.sleep(self.spec.delay)
        for domain in self.spec.domains:
            for name, ip in await self._exchangers(domain):
                self.triggers += 1
                if self.spec.on_connect == "etrn":
                    await self._etrn(name, ip, domain)
                else:
                    await self._finger(name, ip, domain)

    async def _exchangers(self, domain: str) -> list[tuple[str, str]]:
        if self.spec.exchangers is not None:
            return [(x, self.addresses[x]) for x in self.spec.exchangers]
        try:
            records = await self.ctx.resolver.mx(domain)
        except DnsError:
            return []
        out = []
        for r in records:
            if r.is_null or r.exchange == self.ctx.hostname:
                continue
            ip = self.addresses.get(r.exchange)
            if ip is None:
                try:
                    ips = await self.ctx.resolver.a(r.exchange)
                except DnsError:
                    continue
                ip = ips[0] if ips else None
            if ip is not None:
                out.append((r.exchange, ip))
        return out

    def etrn_argument(self, domain: str) -> str:
        form = self.spec.etrn_form
        return domain if form == "plain" else form + domain

    async def _etrn(self, name: str, ip: str, domain: str) -> None:
        client = aiosmtplib.SMTP(hostname=ip, port=25, local_hostname=self.ctx.hostname,
                                 timeout=SESSION_TIMEOUT, start_tls=False)
        try:
            greeting = await client.connect()
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:
            self._attempt(name, ip, 25, connect_outcome(exc), "etrn")
            return
        self._attempt(name, ip, 25, "connected", "etrn", greeting.message)
        try:
            await client.ehlo()
            reply = await client.execute_command(b"ETRN", self.etrn_argument(domain).encode())
            self.replies.append((name, domain, reply.code, reply.message))
            await client.quit()
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
            client.close()

    async def _finger(self, name: str, ip: str, domain: str) -> None:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(ip, self.finger_port), SESSION_TIMEOUT)
        except (OSError, asyncio.TimeoutError) as exc:
            self._attempt(name, ip, self.finger_port, connect_outcome(exc), "finger")
            return
        self._attempt(name, ip, self.finger_port, "connected", "finger")
        try:
            writer.write(domain.encode("ascii") + b"\r\n")
            answer = await asyncio.wait_for(reader.read(4096), SESSION_TIMEOUT)
            self.replies.append((name, domain, 0, answer.decode("ascii", "replace").strip()))
        except (OSError, asyncio.TimeoutError):
            pass
        finally:
            writer.close()

    def _attempt(self, name: str, ip: str, port: int, outcome: str, purpose: str,
                 greeting: str = "") -> None:
        self.ctx.sink.emit(ev.ConnectAttempt(
            t=self.ctx.now(), host=self.ctx.hostname, dest_host=name, dest_ip=ip, port=port,
            outcome=outcome, purpose=purpose, greeting=greeting[:200]))
