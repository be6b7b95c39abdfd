"""Open-relay probing with the 16 address pairs of nmap's smtp-open-relay
(the table is :func:`mta.addresses.nmap_relay_probes`, which the receiving
side's tests use too).

After EHLO, for each pair the probe sends RSET, ``MAIL FROM`` and
``RCPT TO``; a pair "works" when RCPT is accepted (2xx).  No DATA is ever
sent, exactly as the nmap script does (REFERENCE.md §3).  The server side
records every reply; the ``no-open-relay`` check reads those.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiosmtplib

from mta import events as ev
from mta.addresses import nmap_relay_probes
from mta.context import HostContext


@dataclass
class ProbeResult:
    """What one probe run against one target found."""

    target: str
    port: int
    connected: bool
    accepted: list[tuple[str, str]]   # pairs whose RCPT got a 2xx
    auth_needed: bool = False


def banner_host(greeting: str, fallback: str) -> str:
    """The host name in a 220 banner (its first word), as nmap takes it."""
    words = greeting.split()
    return words[0] if words else fallback


async def probe_relay(ctx: HostContext, target_name: str, target_ip: str, port: int,
                      domain: str, timeout: float = 60.0) -> ProbeResult:
    """Run the 16 probes against one server and say which were accepted."""
    client = aiosmtplib.SMTP(hostname=target_ip, port=port, local_hostname=ctx.hostname,
                             timeout=timeout, start_tls=False, use_tls=False)
    try:
        greeting = await client.connect()
    except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:
        ctx.sink.emit(ev.ConnectAttempt(t=ctx.now(), host=ctx.hostname, dest_host=target_name,
                                        dest_ip=target_ip, port=port,
                                        outcome=_outcome(exc), purpose="relay-probe"))
        return ProbeResult(target_name, port, False, [])
    ctx.sink.emit(ev.ConnectAttempt(t=ctx.now(), host=ctx.hostname, dest_host=target_name,
                                    dest_ip=target_ip, port=port, outcome="connected",
                                    purpose="relay-probe", greeting=greeting.message[:200]))
    result = ProbeResult(target_name, port, True, [])
    srv = banner_host(greeting.message, target_name)
    try:
        await client.ehlo()
        for mail_from, rcpt_to in nmap_relay_probes(srv, target_ip, domain):
            await client.execute_command(b"RSET")
            reply = await client.execute_command(b"MAIL", b"FROM:" + mail_from.encode())
            if reply.code == 530:
                result.auth_needed = True
                break
            if reply.code >= 400:
                continue
            reply = await client.execute_command(b"RCPT", b"TO:" + rcpt_to.encode())
            if reply.code == 530:
                result.auth_needed = True
                break
            if 200 <= reply.code < 300:
                result.accepted.append((mail_from, rcpt_to))
        await client.quit()
    except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
        client.close()
    return result


def _outcome(exc: BaseException) -> str:
    if isinstance(exc, (asyncio.TimeoutError, aiosmtplib.SMTPTimeoutError)):
        return "timeout"
    if isinstance(exc, ConnectionResetError):
        return "reset"
    return "refused"
