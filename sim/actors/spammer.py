"""The spammer: straight to the lowest-priority MX, never a retry.

Spammers "intentionally send to the lowest priority (backup) MX records in
an effort to bypass spam filtering" (REFERENCE.md §3).  This actor is not an
MTA: it has no queue, gives up on the first 4xx, 5xx or failed connection,
and so never produces a DSN.  Optionally it probes named hosts for open
relays with the 16 nmap address forms (:mod:`sim.actors.relay_probe`).
"""
from __future__ import annotations

import asyncio
import random

import aiosmtplib

from mta import events as ev
from mta.context import HostContext
from mta.delivery.client import connect_outcome
from mta.dns.resolver import DnsError
from sim.actors import generate as g
from sim.actors.relay_probe import probe_relay
from sim.scenario.traffic import Spammer

SESSION_TIMEOUT = 60.0


class SpammerActor:
    """Runs one ``spammer`` entry of a scenario on its host."""

    def __init__(self, spec: Spammer, ctx: HostContext, rng: random.Random, *, name: str,
                 addresses: dict[str, str], stop: float) -> None:
        self.spec = spec
        self.ctx = ctx
        self.rng = rng
        self.name = name
        self.addresses = addresses
        self.stop = spec.stop if spec.stop is not None else stop
        self.sent = 0
        self.accepted = 0
        self._tasks: list[asyncio.Task] = []

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        if self.spec.relay_probe is not None:
            self._tasks.append(loop.create_task(self._probe_loop()))
        times = g.schedule(self.rng, self.spec, self.stop)
        for n, t in enumerate(times, 1):
            await asyncio.sleep(max(t - loop.time(), 0.0))
            self._tasks.append(loop.create_task(self._send_one(n)))
            self._tasks = [t for t in self._tasks if not t.done()]

    async def _send_one(self, n: int) -> None:
        spec = self.spec
        mail_from, rcpts, size = g.draw_envelope(self.rng, spec, n)
        loop = asyncio.get_running_loop()
        msgid = f"{self.name}.{n}@{self.ctx.hostname}"
        kind = g.draw_content(self.rng, spec.content)
        data = g.build_content(kind, self.rng, spec.content, mail_from=mail_from, rcpts=rcpts,
                               size=size, msgid=msgid, t=loop.time(), subject="cheap watches")
        by_domain: dict[str, list[str]] = {}
        for r in rcpts:
            by_domain.setdefault(r.rpartition("@")[2], []).append(r)
        for domain, group in by_domain.items():
            await self._deliver(domain, group, mail_from, data)

    async def _targets(self, domain: str) -> list[tuple[str, str]]:
        """``(name, ip)`` to try, per ``target``."""
        target = self.spec.target
        if target not in ("lowest-mx", "mx"):
            return [(target, self.addresses[target])]
        try:
            records = [r for r in await self.ctx.resolver.mx(domain) if not r.is_null]
        except DnsError:
            return []
        if target == "lowest-mx" and records:
            worst = max(r.preference for r in records)
            lowest = [r for r in records if r.preference == worst]
            records = [lowest[self.rng.randrange(len(lowest))]]
        out = []
        for r in records or []:
            try:
                ips = await self.ctx.resolver.a(r.exchange)
            except DnsError:
                continue
            if ips:
                out.append((r.exchange, ips[0]))
        return out

    async def _deliver(self, domain: str, rcpts: list[str], mail_from: str,
                       data: bytes) -> None:
        for name, ip in await self._targets(domain):
            client = aiosmtplib.SMTP(hostname=ip, port=25, local_hostname=self.ctx.hostname,
                                     timeout=SESSION_TIMEOUT, start_tls=False)
            try:
                greeting = await client.connect()
            except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:
                self._attempt(name, ip, connect_outcome(exc))
                continue  # a dead MX: try the next one (if target is "mx")
            self._attempt(name, ip, "connected", greeting.message)
            self.sent += 1
            try:
                errors, _ = await client.sendmail(mail_from, rcpts, data)
                self.accepted += len(rcpts) - len(errors)
                await client.quit()
            except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
                client.close()
            return  # whatever the answer: spammers never retry

    def _attempt(self, name: str, ip: str, outcome: str, greeting: str = "") -> None:
        self.ctx.sink.emit(ev.ConnectAttempt(
            t=self.ctx.now(), host=self.ctx.hostname, dest_host=name, dest_ip=ip, port=25,
            outcome=outcome, purpose="spam", greeting=greeting[:200]))

    async def _probe_loop(self) -> None:
        probe = self.spec.relay_probe
        loop = asyncio.get_running_loop()
        at = probe.at
        while at < self.stop:
            await asyncio.sleep(max(at - loop.time(), 0.0))
            for target in probe.targets:
                for port in probe.ports:
                    await probe_relay(self.ctx, target, self.addresses[target], port,
                                      probe.domain)
            if not probe.every:
                return
            at += probe.every
