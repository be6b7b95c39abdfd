"""The same receiving roles on the simulated world (virtual time, simulated
network and DNS), compared with real loopback where both can run."""
from __future__ import annotations

import asyncio

import aiosmtplib
import pytest

from mta.addresses import nmap_relay_probes
from mta.delivery.client import DeliveryConfig
from mta.events import (ConnectionClosed, DeliveredToMailbox, EtrnRequest, FingerQuery,
                        PolicyDecision, SmtpReply)
from mta.mailbox import MailboxStore
from mta.policy import DnsblZone
from mta.queue import MemoryStore, QueueConfig, QueueManager
from mta.roles import CustomerMailServer, PrimaryMx, QueueingServer
from sim.world.network import LinkSpec
from sim.world.schedules import Outages
from sim.world.core import World
from test_roles_receiving import NON_RELAYING, run_probe
from helpers.server import build_server

MX_IP, STRANGER_IP, FEED_IP = "192.0.2.10", "203.0.113.9", "198.51.100.7"
SOA = "@ 3600 IN SOA ns.{o}. hostmaster.{o}. 1 3600 600 86400 60\n"


def zone(origin: str, *records: str) -> str:
    return f"$ORIGIN {origin}.\n" + SOA.format(o=origin) + "".join(r + "\n" for r in records)


def world_with(role, *, seed: int = 3, zones: str | None = None):
    world = World(seed=seed, scenario="receiving")
    mx = world.add_host(role.hostname, MX_IP)
    stranger = world.add_host("bot.spam.example", STRANGER_IP)
    feed = world.add_host("feed.isp.example", FEED_IP)
    if zones:
        world.set_zones(zones)
    server = build_server(role, mx.ctx)
    world.run_until_complete(mx, server.start(None, 25))
    return world, mx, stranger, feed, server


async def sim_probe(srv: str, ip: str) -> list[int]:
    c = aiosmtplib.SMTP(hostname=ip, port=25, local_hostname="probe.nmap.example", timeout=60)
    await c.connect()
    codes = []
    for sender, rcpt in nmap_relay_probes(srv, ip):
        await c.rset()
        await c.execute_command(b"MAIL", b"FROM:" + sender.encode())
        codes.append((await c.execute_command(b"RCPT", b"TO:" + rcpt.encode())).code)
    await c.quit()
    return codes


@pytest.mark.parametrize("name", sorted(NON_RELAYING))
def test_relay_probes_refused_in_sim_same_as_loopback(name: str) -> None:
    role = NON_RELAYING[name]
    world, mx, stranger, _, _ = world_with(role)
    sim_codes = world.run_until_complete(stranger, sim_probe(role.hostname, MX_IP))
    live_codes, _, _ = run_probe(role)
    assert sim_codes == live_codes
    assert all(500 <= c < 600 for c in sim_codes)
    rcpt = [e for e in world.events if isinstance(e, SmtpReply) and e.command == "RCPT"]
    assert len(rcpt) == 16 and all(e.client_ip == STRANGER_IP and e.code >= 500 for e in rcpt)


def test_lockdown_refuses_stranger_admits_feed_in_sim() -> None:
    role = CustomerMailServer(hostname="mail.customer.example", local_domains=("customer.example",),
                              mailboxes=("bob@customer.example",), allowlist=(FEED_IP, "192.168.0.0/16"))
    world, mx, stranger, feed, server = world_with(role)

    async def attempt(helo: str):
        c = aiosmtplib.SMTP(hostname=MX_IP, port=25, local_hostname=helo, timeout=60)
        try:
            await c.connect()
        except aiosmtplib.SMTPConnectResponseError as exc:
            return exc.code
        r = await c.sendmail("a@sender.example", ["bob@customer.example"], b"Subject: x\r\n\r\nhi\r\n")
        await c.quit()
        return 250 if not r[0] else r

    assert world.run_until_complete(stranger, attempt("bot.spam.example")) == 554
    assert world.run_until_complete(feed, attempt("feed.isp.example")) == 250
    greet = [e for e in world.events if isinstance(e, SmtpReply) and e.command == "CONNECT"]
    assert [(e.client_ip, e.code, e.stage) for e in greet] == [
        (STRANGER_IP, 554, "allowlist"), (FEED_IP, 220, "")]
    assert [m.mail_from for m in server.sink.messages("bob@customer.example")] == ["a@sender.example"]


def test_idle_timeout_in_virtual_time() -> None:
    role = PrimaryMx(hostname="mx.example.net", local_domains=("example.net",), idle_timeout=300)
    world, mx, stranger, _, _ = world_with(role)

    async def idle():
        reader, writer = await asyncio.open_connection(MX_IP, 25)
        await reader.readline()
        writer.write(b"EHLO bot.spam.example\r\n")
        while (await reader.readline())[3:4] == b"-":
            pass
        t0 = asyncio.get_running_loop().time()
        line = await reader.readline()           # nothing sent: the server gives up
        t1 = asyncio.get_running_loop().time()
        rest = await reader.read()
        writer.close()
        return line, t1 - t0, rest

    line, waited, rest = world.run_until_complete(stranger, idle())
    assert line == b"421 4.4.2 mx.example.net Error: timeout exceeded\r\n"
    assert waited == pytest.approx(300, abs=0.05) and rest == b""
    closed = [e for e in world.events if isinstance(e, ConnectionClosed)]
    assert [e.reason for e in closed] == ["timeout"]


DNSBL_ZONES = zone("zen.example", "@ IN NS ns.zen.example.", "9.113.0.203 IN A 127.0.0.4") + \
    zone("slow.example", "@ IN NS ns.slow.example.")


@pytest.mark.parametrize("fail,expected", [("open", 250), ("closed", 451)])
def test_dnsbl_in_sim_with_a_list_that_times_out(fail: str, expected: int) -> None:
    role = PrimaryMx(hostname="mx.example.net", local_domains=("example.net",),
                     dnsbl=(DnsblZone("slow.example", fail=fail), DnsblZone("zen.example")))
    world, mx, stranger, feed, _ = world_with(role, zones=DNSBL_ZONES)
    world.resolver.add_outage(0, 10_000, "timeout", target="slow.example")

    async def send():
        c = aiosmtplib.SMTP(hostname=MX_IP, port=25, local_hostname="client.example.org", timeout=60)
        await c.connect()
        await c.mail("a@sender.example")
        r = await c.execute_command(b"RCPT", b"TO:<u@example.net>")
        await c.quit()
        return r.code

    assert world.run_until_complete(feed, send()) == expected          # not listed: fail mode decides
    assert world.run_until_complete(stranger, send()) == (554 if fail == "open" else 451)
    notes = [e.decision for e in world.events if isinstance(e, PolicyDecision)]
    assert notes.count(f"fail-{fail}") == 2


def test_etrn_and_finger_in_sim_release_to_customer_when_link_is_back() -> None:
    world = World(seed=5, scenario="etrn")
    q_host = world.add_host("q.isp.example", "192.0.2.5")
    cust = world.add_host("mail.dial.example", "192.0.2.50",
                          link=LinkSpec(schedule=Outages([(0, 7200)]), down_connect="refuse"))
    world.set_zones(zone("dial.example", "@ IN MX 10 mail", "@ IN MX 20 q.isp.example.",
                         "mail IN A 192.0.2.50", "b IN MX 10 mail.dial.example.")
                    + zone("isp.example", "q IN A 192.0.2.5"))
    customer = CustomerMailServer(hostname="mail.dial.example", local_domains=("dial.example", "b.dial.example"),
                                  mailboxes=("user@dial.example", "x@b.dial.example"))
    store: MailboxStore = customer.build_store(cust.ctx)
    world.run_until_complete(cust, customer.build_server(cust.ctx, store).start(None, 25))
    queue = QueueManager(q_host.ctx, MemoryStore(),
                         QueueConfig(hold_domains=("dial.example", ".dial.example")),
                         DeliveryConfig(mx_names=("q.isp.example",)))
    world.run_until_complete(q_host, queue.start())
    role = QueueingServer(hostname="q.isp.example", relay_domains=("dial.example", ".dial.example"))
    world.run_until_complete(q_host, role.build_server(q_host.ctx, queue, release=queue).start(None, 25))
    world.run_until_complete(q_host, role.build_finger(q_host.ctx, queue).start(None, 79))

    async def submit(rcpt):
        return await queue.submit("s@sender.example", [rcpt], b"Subject: held\r\n\r\nx\r\n")
    for r in ("user@dial.example", "user@dial.example", "x@b.dial.example"):
        world.run_until_complete(q_host, submit(r))
    world.run(until=7300)
    assert store.messages("user@dial.example") == []       # held, not delivered on its own

    async def etrn(arg: bytes):
        c = aiosmtplib.SMTP(hostname="192.0.2.5", port=25, local_hostname="mail.dial.example", timeout=60)
        await c.connect()
        r = await c.execute_command(b"ETRN", arg)
        await c.quit()
        return r.code, r.message

    assert world.run_until_complete(cust, etrn(b"#dial.example")) == \
        (253, "OK, 2 pending messages for node dial.example started")
    world.run(until=world.now() + 60)
    assert len(store.messages("user@dial.example")) == 2
    assert store.messages("x@b.dial.example") == []        # subdomain: not covered by #

    async def finger(query: bytes):
        reader, writer = await asyncio.open_connection("192.0.2.5", 79)
        writer.write(query)
        answer = await reader.read()
        writer.close()
        return answer

    assert world.run_until_complete(cust, finger(b"b.dial.example\r\n")) == \
        b"b.dial.example: delivery of 1 queued messages started\r\n"
    assert world.run_until_complete(cust, finger(b"x@b.dial.example\r\n")) == \
        b"finger forwarding service denied\r\n"
    world.run(until=world.now() + 60)
    assert len(store.messages("x@b.dial.example")) == 1
    etrn_ev = [e for e in world.events if isinstance(e, EtrnRequest)]
    assert [(e.client_ip, e.code) for e in etrn_ev] == [("192.0.2.50", 253)]
    fq = [(e.query, e.released) for e in world.events if isinstance(e, FingerQuery)]
    assert fq == [("b.dial.example", 1), ("x@b.dial.example", 0)]
    assert {e.host for e in world.events if isinstance(e, DeliveredToMailbox)} == {"mail.dial.example"}


def test_dnsbl_fail_closed_at_connect_is_a_421_greeting() -> None:
    role = PrimaryMx(hostname="mx.example.net", local_domains=("example.net",),
                     client_checks_at="connect", dnsbl=(DnsblZone("slow.example", fail="closed"),))
    world, mx, stranger, _, _ = world_with(role, zones=DNSBL_ZONES)
    world.resolver.add_outage(0, 10_000, "servfail", target="slow.example")

    async def greet():
        reader, writer = await asyncio.open_connection(MX_IP, 25)
        data = await reader.read()
        writer.close()
        return data

    data = world.run_until_complete(stranger, greet())
    assert data.startswith(b"421 4.7.1 mx.example.net Service unavailable; Client host [203.0.113.9]")
    closed = [e.reason for e in world.events if isinstance(e, ConnectionClosed)]
    assert closed == ["deferred-at-connect"]


def test_same_seed_same_event_log() -> None:
    def once():
        role = NON_RELAYING["backup_mx"]
        world, mx, stranger, feed, _ = world_with(role, seed=11)
        world.run_until_complete(stranger, sim_probe(role.hostname, MX_IP))

        async def send():
            c = aiosmtplib.SMTP(hostname=MX_IP, port=25, local_hostname="feed.isp.example", timeout=60)
            await c.connect()
            await c.sendmail("a@sender.example", ["alice@example.net"], b"Subject: s\r\n\r\nx\r\n")
            await c.quit()
        world.run_until_complete(feed, send())
        world.finish()
        return [e.to_dict() for e in world.events]

    first, second = once(), once()
    assert first == second and len(first) > 40


@pytest.mark.parametrize("mode,codes", [("conformant", [250] * 30 + [452] * 5),
                                        ("documented", [250] * 35)])
def test_recipient_limit_and_oversized_data_in_sim(mode: str, codes: list[int]) -> None:
    role = CustomerMailServer(hostname="mail.customer.example", local_domains=("customer.example",),
                              mailboxes=tuple(f"u{i}@customer.example" for i in range(35)),
                              max_recipients=30, recipient_limit_mode=mode, max_message_size=100_000)
    world, mx, stranger, feed, server = world_with(role)

    async def send():
        c = aiosmtplib.SMTP(hostname=MX_IP, port=25, local_hostname="feed.isp.example", timeout=60)
        await c.connect()
        await c.mail("a@sender.example")
        got = []
        for i in range(35):
            got.append((await c.execute_command(b"RCPT", f"TO:<u{i}@customer.example>".encode())).code)
        end = (await c.data(b"Subject: s\r\n\r\nx\r\n")).code
        await c.mail("a@sender.example")
        await c.rcpt("u0@customer.example")
        big = b"Subject: big\r\n\r\n" + (b"z" * 998 + b"\r\n") * 300
        try:
            await c.data(big)
            too_big = 250
        except aiosmtplib.SMTPDataError as exc:
            too_big = exc.code
        await c.quit()
        return got, end, too_big

    got, end, too_big = world.run_until_complete(feed, send())
    assert got == codes and end == 250 and too_big == 552
    assert server.data_peak <= 100_000
    delivered = [e.rcpt for e in world.events if isinstance(e, DeliveredToMailbox)]
    assert delivered == [f"u{i}@customer.example" for i in range(30)]


def test_static_blocklist_and_auth_in_transaction_in_sim() -> None:
    from mta.roles import SmartHost
    role = SmartHost(hostname="smtp.isp.example", trusted_networks=(FEED_IP,),
                     blocklist=(STRANGER_IP,), users={"u": "p"}, allow_auth_relay=True)
    world, mx, stranger, feed, _ = world_with(role)

    async def session():
        c = aiosmtplib.SMTP(hostname=MX_IP, port=25, local_hostname="host.client.example", timeout=60)
        await c.connect()
        await c.mail("a@client.example")
        rcpt = (await c.execute_command(b"RCPT", b"TO:<x@far.example>")).code
        auth = (await c.execute_command(b"AUTH", b"PLAIN", b"AHUAcA==")).code
        await c.quit()
        return rcpt, auth

    assert world.run_until_complete(stranger, session()) == (554, 503)
    assert world.run_until_complete(feed, session()) == (250, 503)
    blocked = [e for e in world.events if isinstance(e, SmtpReply) and e.stage == "blocklist"]
    assert [(e.client_ip, e.code) for e in blocked] == [(STRANGER_IP, 554)]
