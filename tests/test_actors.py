"""Traffic actors on the simulated world, against real aiosmtpd servers and
the real queue: spammers hit the lowest-priority MX and never retry, relay
probes send nmap's 16 forms, dial-up customers ETRN and finger on link-up."""
import asyncio
import math
import random

import pytest

from mta import events as ev
from mta.addresses import nmap_relay_probes
from mta.smtp.basic import serve_sink
from mta.delivery.client import DeliveryConfig
from mta.delivery.routing import Route
from mta.ondemand.etrn import EtrnPolicy
from mta.ondemand.finger import FingerListener
from mta.policy import PolicyChain, RelayControl
from mta.queue.manager import QueueManager
from mta.queue.policy import QueueConfig
from mta.queue.store import MemoryStore
from sim.world.disk import SimulatedDisk
from mta.queue.message import message_id
from mta.smtp.config import ServerConfig
from mta.smtp.server import SmtpServer
from sim.actors import generate as g
from sim.actors.dialup import DialupCustomerActor
from sim.actors.relay_probe import probe_relay
from sim.actors.spammer import SpammerActor
from sim.world.network import LinkSpec
from sim.scenario.traffic import DialupCustomer, Spammer
from sim.world.schedules import DialupWindows, Outages
from sim.world.core import World

ZONES = """
$ORIGIN example.net.
@    MX 10 mx1.example.net.
@    MX 20 mx2.example.net.
mx1  A 192.0.2.10
mx2  A 192.0.2.20
$ORIGIN customer.example.
@    MX 10 dial.customer.example.
@    MX 20 backup.isp.example.
dial A 198.51.100.5
$ORIGIN isp.example.
backup A 192.0.2.30
"""


# -- generation ---------------------------------------------------------------

def test_fixed_arrivals_are_evenly_spaced_and_capped():
    times = list(g.arrival_times(random.Random(1), 1 / 60, arrivals="fixed", start=100,
                                 stop=1000))
    assert times == [100 + 60 * k for k in range(1, 15)]   # stop is excluded
    assert len(list(g.arrival_times(random.Random(1), 1.0, count=7))) == 7
    assert list(g.arrival_times(random.Random(1), 0.0, stop=10)) == []


def test_poisson_arrivals_are_seeded_and_have_the_rate():
    a = list(g.arrival_times(random.Random(5), 10 / 3600, stop=100 * 86400))
    b = list(g.arrival_times(random.Random(5), 10 / 3600, stop=100 * 86400))
    assert a == b and a == sorted(a)
    assert abs(len(a) - 24000) < 4 * math.sqrt(24000)   # 10/h for 100 days


def test_daily_pattern_shapes_arrivals_and_keeps_the_mean():
    pattern = [0.0] * 12 + [1.0] * 12          # afternoons only
    times = list(g.arrival_times(random.Random(3), 1 / 60, daily_pattern=pattern,
                                 stop=30 * 86400))
    assert times and all((t % 86400) >= 12 * 3600 for t in times)
    assert abs(len(times) - 43200) < 4 * math.sqrt(43200)   # still 1/min on average
    fixed = list(g.arrival_times(random.Random(3), 1 / 3600, arrivals="fixed",
                                 daily_pattern=pattern, stop=86400))
    assert fixed == [12 * 3600 + 1800 * k for k in range(1, 25)][:len(fixed)]


def test_recipients_from_templates_are_distinct():
    rng = random.Random(0)
    assert g.draw_recipients(rng, ["a@x.example", "b@x.example"], 1)[0] in ("a@x.example",
                                                                              "b@x.example")
    many = g.draw_recipients(rng, ["u{n}@x.example"], 40)
    assert len(set(many)) == 40 and many[0] == "u1@x.example"
    assert len(g.draw_recipients(rng, ["a@x.example"], 5)) == 1   # no template: capped


def test_built_message_has_the_size_and_the_id():
    data = g.build_message(mail_from="a@x.example", rcpts=["b@y.example"], size=10_000,
                           msgid="s.1@host", t=3600.0)
    assert abs(len(data) - 10_000) <= 2
    assert message_id(data) == "s.1@host"
    assert b"\r\n\r\n" in data


# -- spammer ------------------------------------------------------------------------

def _mx_world(mx2_link=None):
    world = World(seed=3, scenario="actors")
    mx1 = world.add_host("mx1.example.net", "192.0.2.10")
    mx2 = world.add_host("mx2.example.net", "192.0.2.20", link=mx2_link)
    bot = world.add_host("bot.example", "198.18.0.66")
    world.set_zones(ZONES)
    sinks = {}
    for h in (mx1, mx2):
        _, sinks[h.name] = world.run_until_complete(h, serve_sink(h.name, 25))
    return world, bot, sinks


def _spammer(**kw):
    spec = dict(kind="spammer", host="bot.example", rate="1/m", arrivals="fixed", count=5,
                to=["alice@example.net"])
    spec["from"] = ["x@spam.example"]
    spec.update(kw)
    return Spammer.model_validate(spec)


def test_spammer_aims_at_the_lowest_priority_mx():
    world, bot, sinks = _mx_world()
    actor = SpammerActor(_spammer(), bot.ctx, world.rng_for("actor", "0"), name="spam0",
                         addresses={}, stop=3600)
    world.spawn(bot, actor.run())
    world.run(until=3600)
    assert len(sinks["mx2.example.net"].messages) == 5
    assert sinks["mx1.example.net"].messages == []
    assert all(m.peer == "198.18.0.66" for m in sinks["mx2.example.net"].messages)
    attempts = [e for e in world.events if isinstance(e, ev.ConnectAttempt)]
    assert [a.dest_host for a in attempts] == ["mx2.example.net"] * 5
    assert {a.purpose for a in attempts} == {"spam"}


def test_spammer_never_retries():
    down = LinkSpec(schedule=Outages([(0, 86400)]), down_connect="refuse")
    world, bot, sinks = _mx_world(mx2_link=down)
    actor = SpammerActor(_spammer(count=3), bot.ctx, world.rng_for("actor", "0"), name="s",
                         addresses={}, stop=86400)
    world.spawn(bot, actor.run())
    world.run(until=86400)
    attempts = [e for e in world.events if isinstance(e, ev.ConnectAttempt)]
    assert [a.outcome for a in attempts] == ["refused"] * 3   # one try each, no fallback
    assert sinks["mx1.example.net"].messages == []


def test_relay_probe_finds_an_open_relay_and_not_a_closed_one():
    world, bot, _ = _mx_world()
    open_result = world.run_until_complete(
        bot, probe_relay(bot.ctx, "mx1.example.net", "192.0.2.10", 25, "nmap.scanme.org"))
    assert open_result.connected
    # A bare aiosmtpd sink relays anything it can parse: every form but the
    # two with a second unquoted "@", which aiosmtpd 1.4.6 refuses as syntax.
    missing = [p for p in nmap_relay_probes("mx1.example.net", "192.0.2.10", "nmap.scanme.org")
               if p not in open_result.accepted]
    assert len(open_result.accepted) == 14, missing
    assert all(rcpt.count("@") == 2 and '"' not in rcpt for _, rcpt in missing)

    closed = world.add_host("closed.example.net", "192.0.2.40")
    chain = PolicyChain([RelayControl(local_domains=("example.net",))])
    server = SmtpServer(closed.ctx, chain, sink=None)
    world.run_until_complete(closed, server.start(port=25))
    result = world.run_until_complete(
        bot, probe_relay(bot.ctx, "closed.example.net", "192.0.2.40", 25, "nmap.scanme.org"))
    assert result.connected and result.accepted == []
    rcpt_replies = [e for e in world.events if isinstance(e, ev.SmtpReply)
                    and e.host == "closed.example.net" and e.command == "RCPT"]
    assert rcpt_replies and all(e.code >= 500 for e in rcpt_replies)


# -- dial-up customer -----------------------------------------------------------------

def _dialup_world(on_connect):
    world = World(seed=4, scenario="dialup")
    backup = world.add_host("backup.isp.example", "192.0.2.30")
    dial = world.add_host("dial.customer.example", "198.51.100.5",
                          link=LinkSpec(schedule=DialupWindows(up=900, every=4 * 3600,
                                                               offset=3600),
                                        down_connect="timeout"))
    world.set_zones(ZONES)
    queue = QueueManager(backup.ctx, MemoryStore(SimulatedDisk()),
                         QueueConfig(hold_domains=("customer.example",)),
                         DeliveryConfig(routes={"customer.example":
                                                Route(hosts=("dial.customer.example",))}))
    world.run_until_complete(backup, queue.start())
    server = SmtpServer(backup.ctx, PolicyChain([]), sink=queue,
                        config=ServerConfig(etrn=EtrnPolicy()), release=queue)
    world.run_until_complete(backup, server.start(port=25))
    finger = FingerListener(backup.ctx, queue)
    world.run_until_complete(backup, finger.start())
    _, customer_sink = world.run_until_complete(dial, serve_sink(dial.name, 25))
    world.run_until_complete(backup, queue.submit("a@example.net", ["bob@customer.example"],
                                                  b"Subject: hi\r\n\r\nhello\r\n"))
    spec = DialupCustomer.model_validate({"kind": "dialup-customer",
                                          "host": "dial.customer.example",
                                          "domains": "customer.example",
                                          "on_connect": on_connect})
    actor = DialupCustomerActor(spec, dial.ctx, world.rng_for("actor", "d"),
                                addresses={"backup.isp.example": "192.0.2.30"}, stop=86400)
    world.on_link_up(dial.name, lambda: world.spawn(dial, actor.on_link_up()))
    return world, actor, customer_sink


@pytest.mark.parametrize("on_connect, trigger", [("etrn", "etrn"), ("finger", "finger")])
def test_dialup_customer_releases_its_mail_on_link_up(on_connect, trigger):
    world, actor, customer_sink = _dialup_world(on_connect)
    world.run(until=3500)
    assert customer_sink.messages == []            # held while the link is down
    world.run(until=3600 + 900)
    assert len(customer_sink.messages) == 1
    assert customer_sink.messages[0].rcpts == ("bob@customer.example",)
    released = [e for e in world.events if isinstance(e, ev.Released)]
    assert released and released[0].trigger == trigger and released[0].count == 1
    assert 3600 <= released[0].t < 3600 + 60
    # the actor asked the exchanger, found from the domain's MX records
    attempts = [e for e in world.events if isinstance(e, ev.ConnectAttempt)
                and e.purpose == on_connect]
    assert [a.dest_host for a in attempts] == ["backup.isp.example"]


def test_dialup_customer_that_waits_triggers_nothing():
    world, actor, customer_sink = _dialup_world("wait")
    world.run(until=86400)
    assert customer_sink.messages == []
    assert not [e for e in world.events if isinstance(e, ev.Released)]
    assert actor.triggers == 0
