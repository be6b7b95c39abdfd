"""A secondary MX stores mail for two simulated days and forwards it to the
primary when the primary comes back (the ``mx-fallback`` guarantee).

Senders deliver by MX lookup with the Postfix preset; the primary's link is
down for two days (connections time out), so they fall back to the
secondary (the real receiving server in front of a queue).  The secondary
is an MX itself: it may only forward to better preferences, i.e. the
primary, and keeps retrying on its own (Postfix) schedule until it can.
"""
from __future__ import annotations

from mta import events as ev
from mta.delivery.client import DeliveryConfig
from mta.policy import PolicyChain
from mta.queue.policy import QueueConfig
from mta.retry.presets import preset
from mta.smtp.server import SmtpServer
from sim.world.network import LinkSpec
from sim.world.schedules import Outages
from sim.world.core import World
from helpers.queue import Recorder, queue_for, serve, zones

DAY = 86400.0
ZONE = {"hosted.example": ["@ MX 10 mx1", "@ MX 20 mx2", "mx1 A 192.0.2.10", "mx2 A 192.0.2.20"],
        "sender.example": ["@ A 192.0.2.1"]}


def test_secondary_holds_two_days_then_delivers_to_the_returning_primary():
    world = World(seed=5)
    sender = world.add_host("out.sender.example", "192.0.2.1")
    primary = world.add_host("mx1.hosted.example", "192.0.2.10",
                             link=LinkSpec(schedule=Outages([(0, 2 * DAY)]), down_connect="timeout"))
    secondary = world.add_host("mx2.hosted.example", "192.0.2.20")
    world.set_zones(zones(ZONE))
    mailbox = Recorder("primary")
    world.run_until_complete(primary, serve(mailbox, primary.name))

    q2 = queue_for(secondary, config=QueueConfig(retry=preset("postfix")),
                   delivery=DeliveryConfig(connect_timeout=30))

    async def start_secondary():
        await q2.start()
        await SmtpServer(secondary.ctx, PolicyChain(), q2).start(port=25)
    world.run_until_complete(secondary, start_secondary())

    qs = queue_for(sender, config=QueueConfig(retry=preset("postfix")),
                   delivery=DeliveryConfig(connect_timeout=30))
    world.run_until_complete(sender, qs.start())
    for i in range(5):
        world.run_until_complete(sender, qs.submit("a@sender.example", [f"u{i}@hosted.example"],
                                                   f"Subject: {i}\r\n\r\nx\r\n".encode()))
    world.run(until=2 * DAY - 60)
    # The senders handed everything to the secondary after a timeout on the primary.
    relayed_by_sender = [e for e in world.events if isinstance(e, ev.Relayed) and e.host == sender.name]
    assert len(relayed_by_sender) == 5 and {e.dest_host for e in relayed_by_sender} == {"mx2.hosted.example"}
    accepted = [e for e in world.events if isinstance(e, ev.MessageAccepted) and e.host == secondary.name]
    assert len(accepted) == 5
    # The secondary only ever tried the primary, and kept retrying (Postfix caps gaps near 4000 s).
    tries = [e for e in world.events if isinstance(e, ev.AttemptStarted) and e.host == secondary.name]
    assert {e.dest_host for e in tries} == {"mx1.hosted.example"}
    per_msg = [e.t for e in tries if e.msg == accepted[0].msg]
    assert max(b - a for a, b in zip(per_msg, per_msg[1:])) <= 4000 + 300 + 60
    assert not mailbox.messages and not [e for e in world.events if isinstance(e, ev.Bounced)]
    assert q2.state.pending() == 5

    world.run(until=2 * DAY + 4400)       # within one maximal backoff of the return
    assert sorted(mailbox.rcpts()) == [f"u{i}@hosted.example" for i in range(5)]
    assert q2.state.pending() == 0
    traces = {e.trace for e in accepted}
    assert {e.trace for e in world.events if isinstance(e, ev.Relayed) and e.host == secondary.name} == traces
