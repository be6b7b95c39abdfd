"""Hand-computed retry timelines of each preset, run through the queue.

The destination's MX host is up but nothing listens on port 25 (every
connection is refused at once, links have zero latency), so each attempt
fails at the instant it starts and the attempt times are exactly the
schedule's.  The timelines below were computed by hand from each preset's
rules (REFERENCE.md §2 and mta/retry/presets.py's docstrings), not by calling it.
"""
from __future__ import annotations


from mta import events as ev
from mta.delivery.dsn import ACTION_DELAYED
from mta.queue.policy import QueueConfig
from mta.retry.presets import preset
from sim.world.network import LinkSpec
from sim.world.core import World
from helpers.queue import queue_for, zones

DAY = 86400.0
ZONE = {"b.example": ["@ MX 10 mx", "mx A 192.0.2.2"], "a.example": ["@ A 192.0.2.1"]}


def run_timeline(schedule, until, config=None, mail_from="s@a.example"):
    world = World(seed=1)
    a = world.add_host("a.example", "192.0.2.1", link=LinkSpec(latency=0.0))
    world.add_host("mx.b.example", "192.0.2.2", link=LinkSpec(latency=0.0))
    world.set_zones(zones(ZONE))
    config = config or QueueConfig(retry=schedule, local_domains=("a.example",))
    q = queue_for(a, config=config)
    world.run_until_complete(a, q.start())
    msg = world.run_until_complete(a, q.submit(mail_from, ["u@b.example"], b"Subject: x\r\n\r\nx\r\n"))
    world.run(until=until)
    attempts = [e.t for e in world.events if isinstance(e, ev.AttemptStarted) and e.msg == msg]
    bounced = [e for e in world.events if isinstance(e, ev.Bounced) and e.msg == msg]
    return world, msg, attempts, bounced


def test_postfix_backoff_doubles_with_age_then_caps_at_4000s_and_expires_after_5d():
    # age-clamped backoff [300, 4000], taken at the next 300 s queue scan:
    # 0 -> 300 -> 600 -> 1200 -> 2400 -> 4800 -> (8800 ->) 9000, then each
    # +4000 lands between scans and waits for the next: +4200 per attempt.
    # Expired at the first deferral with age > 5 d: 9000 + 4200*101 = 433200.
    world, msg, attempts, bounced = run_timeline(preset("postfix"), 6 * DAY)
    expected = [0, 300, 600, 1200, 2400, 4800] + [9000 + 4200 * k for k in range(102)]
    assert attempts == expected
    assert len(bounced) == 1 and bounced[0].t == 433200 and bounced[0].reason == "expired"
    assert bounced[0].code == 421     # the last transient reply is kept in the DSN


def test_exim_default_rules_timeline():
    # F,2h,15m: every 900 s while failing <= 2h: 0, 900, ..., 7200.
    # G,16h,1h,1.5 from 8100: gaps 3600, 5400, 8100, 12150, 18225, 27337.
    # F,4d,6h from 82912: every 21600 s; at 363712 the failure is past 4 d: bounce.
    world, msg, attempts, bounced = run_timeline(preset("exim"), 5 * DAY)
    f1 = [900 * k for k in range(9)]
    g = [8100, 11700, 17100, 25200, 37350, 55575, 82912]
    f3 = [82912 + 21600 * k for k in range(1, 14)]
    assert attempts == f1 + g + f3
    assert len(bounced) == 1 and bounced[0].t == 363712
    # Exim's delay_warning (24 h) sends one delay DSN, and only one.
    warnings = [e for e in world.events if isinstance(e, ev.DsnCreated) and e.action == ACTION_DELAYED]
    assert len(warnings) == 1 and warnings[0].t == DAY and warnings[0].to == "s@a.example"


def test_sendmail_queue_runs_every_30m_warns_at_4h_returns_at_5d():
    world, msg, attempts, bounced = run_timeline(preset("sendmail"), 6 * DAY)
    assert attempts == [1800.0 * k for k in range(241)]        # 0 .. 432000
    assert len(bounced) == 1 and bounced[0].t == 5 * DAY
    warnings = [e for e in world.events if isinstance(e, ev.DsnCreated) and e.action == ACTION_DELAYED]
    assert [w.t for w in warnings] == [4 * 3600]


def test_rfc5321_plain_every_30_minutes_for_5_days():
    world, msg, attempts, bounced = run_timeline(preset("rfc5321"), 6 * DAY)
    assert attempts == [1800.0 * k for k in range(241)]
    assert bounced[0].t == 5 * DAY


def test_custom_geometric_backoff():
    sched = preset("custom", min_backoff=60, max_backoff=600, factor=2, lifetime="1h")
    world, msg, attempts, bounced = run_timeline(sched, 2 * 3600)
    # 60, 120, 240, 480, then capped at 600 until the first failure at >= 1 h.
    expected = [0, 60, 180, 420, 900, 1500, 2100, 2700, 3300, 3900]
    assert attempts == expected and bounced[0].t == 3900


def test_per_domain_lifetime_shortens_the_feed_queue_to_2_days():
    config = QueueConfig(retry=preset("postfix"), domain_lifetimes={"b.example": 2 * DAY},
                         local_domains=("a.example",))
    world, msg, attempts, bounced = run_timeline(None, 3 * DAY, config=config)
    # same discipline, first deferral with age >= 172800: 4800 + 4200*40 = 172800
    assert attempts[-1] == 172800 and bounced[0].t == 172800


def test_no_delay_warning_or_bounce_dsn_for_null_sender():
    world, msg, attempts, bounced = run_timeline(preset("sendmail"), 6 * DAY, mail_from="")
    assert len(bounced) == 1 and bounced[0].dsn_trace == ""
    assert not [e for e in world.events if isinstance(e, ev.DsnCreated)]
