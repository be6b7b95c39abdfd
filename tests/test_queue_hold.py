"""Hold and release: a queueing server holding mail for a dial-up customer.

The customer's mail server (a real aiosmtpd) sits behind a link that is
down for the first two hours.  The queueing server holds its domain and
releases it on ETRN or finger (``release()`` called directly, as the
front-ends do), or by its own connectivity probe.
"""
from __future__ import annotations

from mta import events as ev
from mta.delivery.client import DeliveryConfig
from mta.ondemand.probe import ConnectivityProbe, ProbeConfig
from mta.queue.policy import QueueConfig
from mta.retry.presets import preset
from sim.world.network import LinkSpec
from sim.world.schedules import Outages
from sim.world.core import World
from helpers.queue import Recorder, queue_for, serve, zones

DOWN_UNTIL = 7200.0
ZONE = {"dial.example": ["@ MX 10 mail", "@ MX 20 q.isp.example.", "mail A 192.0.2.50",
                         "a MX 10 mail.dial.example.", "a MX 20 q.isp.example."],
        "isp.example": ["q A 192.0.2.5"], "s.example": ["@ A 192.0.2.9"]}


def build(lifetime=None, probe_interval=None, hold=("dial.example", ".dial.example")):
    world = World(seed=4)
    q_host = world.add_host("q.isp.example", "192.0.2.5")
    cust = world.add_host("mail.dial.example", "192.0.2.50",
                          link=LinkSpec(schedule=Outages([(0, DOWN_UNTIL)]), down_connect="refuse"))
    world.set_zones(zones(ZONE))
    rec = Recorder("customer")
    world.run_until_complete(cust, serve(rec, cust.name))
    lifetimes = {"dial.example": lifetime} if lifetime else {}
    config = QueueConfig(retry=preset("postfix"), hold_domains=hold, domain_lifetimes=lifetimes,
                         local_domains=("s.example",))
    q = queue_for(q_host, config=config, delivery=DeliveryConfig(connect_timeout=30))
    world.run_until_complete(q_host, q.start())
    return world, q_host, q, rec


def send(world, host, q, n, rcpt="user@dial.example", mail_from="s@s.example"):
    return [world.run_until_complete(host, q.submit(mail_from, [rcpt], f"Subject: {i}\r\n\r\nx\r\n".encode()))
            for i in range(n)]


def of(world, cls, **match):
    return [e for e in world.events if isinstance(e, cls)
            and all(getattr(e, k) == v for k, v in match.items())]


def test_held_mail_waits_and_etrn_release_delivers_it_over_a_new_connection():
    world, qh, q, rec = build()
    send(world, qh, q, 3)
    world.run(until=3 * 3600)
    assert all(e.held for e in of(world, ev.Queued))
    assert not of(world, ev.AttemptStarted)          # held: never tried on its own
    assert q.held_count("dial.example", False) == 3
    n = world.run_until_complete(qh, _release(q, "dial.example", False, "etrn", "192.0.2.50"))
    assert n == 3
    rel = of(world, ev.Released)
    assert [(r.domain, r.trigger, r.count, r.client_ip) for r in rel] == [("dial.example", "etrn", 3, "192.0.2.50")]
    world.run(until=world.now() + 60)
    assert len(rec.messages) == 3 and q.held_count("dial.example", False) == 0
    assert len(of(world, ev.Relayed)) == 3
    assert all(c.purpose == "deliver" for c in of(world, ev.ConnectAttempt))


async def _release(q, domain, subs, trigger, ip=""):
    return q.release(domain, subs, trigger, ip)


def test_release_while_the_link_is_still_down_keeps_the_mail_held():
    world, qh, q, rec = build()
    send(world, qh, q, 2)
    world.run(until=600)
    assert world.run_until_complete(qh, _release(q, "dial.example", False, "finger")) == 2
    world.run(until=1200)
    assert len(of(world, ev.Deferred)) == 2 and not of(world, ev.Bounced)
    assert q.held_count("dial.example", False) == 2     # back to held, not on a retry timer
    world.run(until=DOWN_UNTIL + 3600)
    assert not rec.messages and len(of(world, ev.AttemptStarted)) == 2
    assert world.run_until_complete(qh, _release(q, "dial.example", False, "finger")) == 2
    world.run(until=world.now() + 60)
    assert len(rec.messages) == 2


def test_subdomain_release_only_with_the_at_form():
    world, qh, q, rec = build()
    send(world, qh, q, 1, rcpt="u@a.dial.example")
    send(world, qh, q, 1)
    world.run(until=DOWN_UNTIL + 10)
    assert q.held_count("dial.example", False) == 1
    assert q.held_count("dial.example", True) == 2
    assert world.run_until_complete(qh, _release(q, "dial.example", True, "etrn")) == 2
    world.run(until=world.now() + 60)
    assert sorted(rec.rcpts()) == ["u@a.dial.example", "user@dial.example"]


def test_held_mail_expires_after_the_domain_lifetime_with_one_dsn():
    world, qh, q, rec = build(lifetime=86400)
    ids = send(world, qh, q, 1)
    world.run(until=86400 + 1)
    b = of(world, ev.Bounced, msg=ids[0])
    assert len(b) == 1 and b[0].t == 86400 and b[0].reason == "expired" and "4.4.7" in b[0].text
    dsn = of(world, ev.DsnCreated)
    assert len(dsn) == 1 and dsn[0].to == "s@s.example" and dsn[0].about_trace == b[0].trace
    assert len(of(world, ev.DeliveredToMailbox, rcpt="s@s.example")) == 1
    assert q.held_count("dial.example", False) == 0


def test_connectivity_probe_releases_within_one_interval_of_the_link_coming_up():
    world, qh, q, rec = build()
    send(world, qh, q, 4)
    probe = ConnectivityProbe(qh.ctx, q, ProbeConfig(domain="dial.example", target="mail.dial.example",
                                                     interval=1000, timeout=10))
    world.spawn(qh, probe.run())
    world.run(until=DOWN_UNTIL + 1000 + 60)
    probes = of(world, ev.ConnectAttempt, purpose="probe")
    assert [p.outcome for p in probes] == ["refused"] * 7 + ["connected"]
    # probes at 1000, 2000, ... 7000 refused; 8000 is within one interval of 7200
    assert probes[-1].t - 8000 < 1 and probes[-1].greeting.startswith("220")
    rel = of(world, ev.Released)
    assert [(r.trigger, r.count) for r in rel] == [("probe", 4)]
    assert len(rec.messages) == 4 and all(e.t <= 8000 + 60 for e in of(world, ev.Relayed))
    # Nothing held: later probes do not knock.
    world.run(until=DOWN_UNTIL + 3 * 1000 + 60)
    assert len(of(world, ev.ConnectAttempt, purpose="probe")) == 8


def test_etrn_and_finger_front_ends_release_through_the_queue():
    """The receiving server's ETRN and the finger listener drive release()."""
    import asyncio

    import aiosmtplib

    from mta.ondemand.etrn import EtrnPolicy
    from mta.ondemand.finger import FingerListener
    from mta.policy import PolicyChain
    from mta.smtp.config import ServerConfig
    from mta.smtp.server import SmtpServer

    world, qh, q, rec = build()
    cust = world.host("mail.dial.example")

    async def listen():
        await SmtpServer(qh.ctx, PolicyChain(), q, ServerConfig(etrn=EtrnPolicy(enabled=True)),
                         release=q).start(port=25)
        await FingerListener(qh.ctx, q).start()
    world.run_until_complete(qh, listen())
    send(world, qh, q, 2)
    send(world, qh, q, 1, rcpt="u@a.dial.example")
    world.run(until=DOWN_UNTIL + 60)

    async def etrn():
        smtp = aiosmtplib.SMTP(hostname="192.0.2.5", port=25, local_hostname="mail.dial.example", timeout=30)
        await smtp.connect()
        await smtp.ehlo()
        resp = await smtp.execute_command(b"ETRN", b"dial.example")
        await smtp.quit()
        return resp.code, resp.message

    code, text = world.run_until_complete(cust, etrn())
    assert code in (250, 252, 253) and q.held_count("dial.example", True) == 1
    world.run(until=world.now() + 60)
    assert sorted(rec.rcpts()) == ["user@dial.example", "user@dial.example"]

    async def finger():
        reader, writer = await asyncio.open_connection("192.0.2.5", 79)
        writer.write(b"a.dial.example\r\n")
        answer = await reader.read()
        writer.close()
        return answer

    world.run_until_complete(cust, finger())
    world.run(until=world.now() + 60)
    assert rec.rcpts()[-1] == "u@a.dial.example" and q.held_count("dial.example", True) == 0
    assert [(r.trigger, r.count) for r in of(world, ev.Released)] == [("etrn", 2), ("finger", 1)]
