"""Connectivity probe: release held mail when the customer's server answers.

The backup exchangers of a dial-up customer do not wait for ETRN or finger
alone: on a schedule they try to connect to the customer's mail server and,
if it answers with a 220 greeting, release what they hold for the domain
(the ``connectivity-probe`` guarantee).  The probe says QUIT politely and
delivery then runs over new connections started by the queue.

Every probe connection is recorded as a ``ConnectAttempt`` with
``purpose="probe"``.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiosmtplib

from mta import events as ev
from mta.context import HostContext
from mta.delivery.client import connect_outcome
from mta.delivery.routing import is_ip
from mta.dns.resolver import DnsError
from mta.interfaces import ReleaseTarget

GREETING_OK = 220


@dataclass
class ProbeConfig:
    """What to probe and how often.  ``target`` is a host name or IP literal."""

    domain: str
    target: str
    port: int = 25
    interval: float = 300.0
    timeout: float = 10.0
    include_subdomains: bool = False
    only_when_held: bool = True    # do not knock when nothing waits


class ConnectivityProbe:
    """Probes ``config.target`` every ``interval`` seconds (see module doc)."""

    def __init__(self, ctx: HostContext, queue: ReleaseTarget, config: ProbeConfig) -> None:
        self.ctx = ctx
        self.queue = queue
        self.config = config
        self.probes = 0
        self.released = 0

    async def _addresses(self) -> list[str]:
        t = self.config.target
        if is_ip(t):
            return [t.strip("[]")]
        try:
            return await self.ctx.resolver.a(t)  # type: ignore[union-attr]
        except DnsError:
            return []

    async def probe_once(self) -> int:
        """One probe: returns the number of messages released (0 if the
        server did not answer 220 or nothing was held)."""
        c = self.config
        if c.only_when_held and self.queue.held_count(c.domain, c.include_subdomains) == 0:
            return 0
        self.probes += 1
        for ip in await self._addresses():
            client = aiosmtplib.SMTP(hostname=ip, port=c.port, local_hostname=self.ctx.hostname,
                                     timeout=c.timeout)
            outcome, greeting, code = "connected", "", 0
            try:
                resp = await client.connect(timeout=c.timeout)
                code, greeting = resp.code, f"{resp.code} {resp.message}"
            except aiosmtplib.SMTPConnectResponseError as exc:
                code, greeting = exc.code, f"{exc.code} {exc.message}"
            except aiosmtplib.SMTPConnectTimeoutError:
                outcome = "timeout"
            except (aiosmtplib.SMTPException, OSError) as exc:
                outcome = connect_outcome(exc)
            self.ctx.sink.emit(ev.ConnectAttempt(
                t=self.ctx.now(), host=self.ctx.hostname, dest_host=c.target, dest_ip=ip,
                port=c.port, outcome=outcome, purpose="probe", greeting=greeting))
            if code == GREETING_OK:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError):
                    client.close()
                n = self.queue.release(c.domain, c.include_subdomains, "probe", "")
                self.released += n
                return n
            client.close()
        return 0

    async def run(self) -> None:
        """Probe forever, one interval apart (cancel the task to stop)."""
        while True:
            await asyncio.sleep(self.config.interval)
            await self.probe_once()
