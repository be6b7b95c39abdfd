"""The built-in demo run: mail to an MX whose link is down for two days.

A sending MTA (the real queue of ``mta.queue`` on the Postfix retry preset,
delivering by MX lookup) submits a message every 20 minutes for the first
four hours.  The recipient's mail server (``mta.roles.CustomerMailServer``
on the real aiosmtpd-based server) is reachable for the first half hour,
then its link is down for two simulated days.  Everything is simulated:
DNS from zone text, connections over the virtual network, time in SimPy.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

from mta.events import (AttemptStarted, Bounced, DeliveredToMailbox, Deferred, Event,
                        MessageSubmitted)
from mta.queue.manager import QueueManager
from mta.queue.policy import QueueConfig
from mta.queue.store import MemoryStore
from mta.retry.presets import preset
from mta.roles import CustomerMailServer
from sim.world.disk import SimulatedDisk
from sim.world.network import LinkSpec
from sim.world.schedules import Outages
from sim.world.core import World

DAY = 86400.0
OUTAGE = (1800.0, 1800.0 + 2 * DAY)

ZONES = """\
$ORIGIN customer.example.
@        3600 IN SOA ns.customer.example. hostmaster.customer.example. 1 7200 3600 1209600 300
@        3600 IN NS  ns.customer.example.
@        3600 IN MX  10 mx.customer.example.
mx       3600 IN A   192.0.2.25
ns       3600 IN A   192.0.2.53
$ORIGIN sender.example.
@        3600 IN SOA ns.sender.example. hostmaster.sender.example. 1 7200 3600 1209600 300
@        3600 IN NS  ns.sender.example.
@        3600 IN MX  10 mail.sender.example.
mail     3600 IN A   198.51.100.10
ns       3600 IN A   198.51.100.53
"""


@dataclass
class DemoResult:
    world: World
    messages: int
    delivered: int
    bounced: int
    attempts: int
    deferrals: int
    last_delivery: float | None


def run_demo(seed: int = 1, messages: int = 12, horizon: float = 3 * DAY) -> DemoResult:
    """Run the demo world and summarise its event log."""
    world = World(seed=seed, scenario="demo")
    sender = world.add_host("mail.sender.example", "198.51.100.10")
    mx = world.add_host("mx.customer.example", "192.0.2.25",
                        LinkSpec(latency=0.05, bandwidth=7000, schedule=Outages([OUTAGE])))
    world.set_zones(ZONES)

    role = CustomerMailServer(hostname=mx.name, local_domains=("customer.example",),
                              mailboxes=("alice@customer.example",))
    store = role.build_store(mx.ctx)
    server = role.build_server(mx.ctx, store)
    world.run_until_complete(mx, server.start(port=25))

    queue = QueueManager(sender.ctx, MemoryStore(SimulatedDisk()), QueueConfig(retry=preset("postfix")))
    world.run_until_complete(sender, queue.start())

    async def traffic() -> None:
        for n in range(messages):
            body = (f"From: bob@sender.example\r\nTo: alice@customer.example\r\n"
                    f"Message-ID: <demo{n}@sender.example>\r\nSubject: demo {n}\r\n\r\n"
                    f"Message {n} of the demo.\r\n").encode()
            await queue.submit("bob@sender.example", ["alice@customer.example"], body)
            await asyncio.sleep(1200)

    world.spawn(sender, traffic())
    world.run(until=horizon)
    world.finish()
    return summarise(world, messages)


def summarise(world: World, messages: int) -> DemoResult:
    ev = world.events

    def count(kind: type[Event]) -> int:
        return sum(1 for e in ev if isinstance(e, kind))

    delivered = [e for e in ev if isinstance(e, DeliveredToMailbox)]
    return DemoResult(world=world, messages=count(MessageSubmitted), delivered=len(delivered),
                      bounced=count(Bounced), attempts=count(AttemptStarted),
                      deferrals=count(Deferred),
                      last_delivery=max((e.t for e in delivered), default=None))


def hours(t: float | None) -> str:
    return "never" if t is None else f"{t / 3600:.1f} h"
