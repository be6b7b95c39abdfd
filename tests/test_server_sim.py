"""The receiving roles on the simulated world where only the simulation can
run the case: DNS outages, links that come back, ETRN and finger releases,
determinism.  What both backends must do alike is in
tests/test_server_conformance.py."""
from __future__ import annotations

import asyncio

import aiosmtplib
import pytest

from mta.delivery.client import DeliveryConfig
from mta.events import (ConnectionClosed, DeliveredToMailbox, EtrnRequest, FingerQuery,
                        PolicyDecision, SmtpReply, codec)
from mta.mailbox import MailboxStore
from mta.policy import DnsblZone
from mta.queue.manager import QueueManager
from mta.queue.policy import QueueConfig
from mta.queue.store import MemoryStore
from sim.world.disk import SimulatedDisk
from mta.roles import CustomerMailServer, PrimaryMx, QueueingServer
from helpers.server import (FEED_IP, MX_IP, NON_RELAYING, STRANGER_IP, Peer, relay_probe,
                            world_with)
from sim.world.core import World
from sim.world.network import LinkSpec
from sim.world.schedules import Outages

SOA = "@ 3600 IN SOA ns.{o}. hostmaster.{o}. 1 3600 600 86400 60\n"


def zone(origin: str, *records: str) -> str:
    return f"$ORIGIN {origin}.\n" + SOA.format(o=origin) + "".join(r + "\n" for r in records)


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
    queue = QueueManager(q_host.ctx, MemoryStore(SimulatedDisk()),
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
        world.run_until_complete(stranger, relay_probe(Peer(STRANGER_IP, MX_IP, 25, None), role.hostname))

        async def send():
            c = aiosmtplib.SMTP(hostname=MX_IP, port=25, local_hostname="feed.isp.example", timeout=60)
            await c.connect()
            await c.sendmail("a@sender.example", ["alice@example.net"], b"Subject: s\r\n\r\nx\r\n")
            await c.quit()
        world.run_until_complete(feed, send())
        world.finish()
        return [codec.to_dict(e) for e in world.events]

    first, second = once(), once()
    assert first == second and len(first) > 40


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
