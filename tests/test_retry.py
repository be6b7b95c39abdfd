"""Retry schedules: hand-computed timelines for every preset, give-up points,
per-domain lifetimes, and properties that must hold for any schedule.

Every timeline here is for a message that fails every attempt, attempts
taking no time, queued at t=0 unless stated, so the arithmetic in the
comments can be checked by hand.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.queue import queue_for, zones
from mta import events as ev
from mta.queue.policy import QueueConfig
from mta.queue.scheduling import RETRY_TIME_NOT_REACHED
from mta.retry.exim import EximHints
from mta.retry.presets import (
    DAY, HOUR, EXIM_DEFAULT_RULES, CustomSchedule, EximRetryRecord, EximRule, EximSchedule,
    PostfixSchedule, RetrySchedule, SendmailSchedule, parse_exim_rules, preset,
    preset_names, timeline,
)
from sim.world.core import World
from sim.world.network import LinkSpec


# -- Postfix ---------------------------------------------------------------------------
# Defaults: minimal_backoff_time 300, maximal_backoff_time 4000, queue_run_delay 300
# (deferred-queue scans at 0, 300, 600, ...), maximal_queue_lifetime 5d = 432000.
# After a failure at `now` (age = now - 0): next = first scan >= now + clamp(age, 300, 4000).
POSTFIX_HEAD = [
    0,      # arrival: tried at once
    300,    # fail at 0:    age 0    -> clamp 300  -> 0+300 = 300 (a scan tick)
    600,    # fail at 300:  age 300  -> 300        -> 600
    1200,   # fail at 600:  age 600  -> 600        -> 1200
    2400,   # fail at 1200: age 1200 -> 1200       -> 2400
    4800,   # fail at 2400: age 2400 -> 2400       -> 4800
    9000,   # fail at 4800: age 4800 -> 4000 (max) -> 8800 -> next scan 9000 (30*300)
    13200,  # fail at 9000: 9000+4000 = 13000 -> scan 13200 (44*300)
    17400,  # 13200+4000 = 17200 -> 17400 (58*300): from here every 4200
]


def test_postfix_timeline_and_give_up():
    tl = timeline(preset("postfix"))
    assert list(tl.attempts[:9]) == POSTFIX_HEAD
    # From 4800 on: 4000 rounded up to the 300 s scan grid = 4200 per step.
    # Attempt n (n >= 6) is at 4800 + 4200*(n-6).  The last one not past the
    # lifetime: 4800 + 4200*101 = 429000 <= 432000 (attempt 107); its failure
    # is not later than 432000, so one more try at 429000+4200 = 433200
    # (attempt 108), whose failure at 433200 > 432000 returns the message.
    assert list(tl.attempts[5:]) == [4800 + 4200 * i for i in range(103)]
    assert tl.attempts[-2:] == (429000, 433200)
    assert len(tl.attempts) == 108
    assert tl.gave_up_at == 433200


def test_postfix_without_scan_grid():
    # queue_run_delay 0: exactly now + clamp(age): 0, 300, 600, 1200, 2400, 4800,
    # then +4000: 8800, 12800, 16800.
    tl = timeline(preset("postfix", queue_run_delay=0))
    assert list(tl.attempts[:9]) == [0, 300, 600, 1200, 2400, 4800, 8800, 12800, 16800]


def test_postfix_gives_up_at_the_lifetime_in_whole_seconds():
    # qmgr_active_done_25_generic: event_time() >= create_time + lifetime,
    # both whole seconds (the real Postfix agrees: test_retry_fidelity_postfix).
    s = preset("postfix")
    assert s.next_attempt(0, 0, 431999.9, 50) is not None
    assert s.next_attempt(0, 0, 432000, 50) is None
    assert s.next_attempt(0.9, 0.9, 432000.1, 50) is None     # floor(0.9) = 0
    # maximal_queue_lifetime = 0: try once.
    assert preset("postfix", maximal_queue_lifetime=0).next_attempt(0, 0, 0, 1) is None


def test_postfix_stamps_whole_seconds_and_scans_take_a_stamp_one_second_early():
    s = preset("postfix", queue_run_delay=0)
    # Arrival 10.7 (second 10), deferral at 20.9 (second 20): age 10 -> 300.
    assert s.next_try(10.7, 20.9) == 320
    assert s.next_attempt(10.7, 10.7, 20.9, 1) == 320      # no scan grid: at the stamp
    # qmgr_active_feed skips a file only if st_mtime > time() + 1: with scans
    # every 300 s, arrival at 1 and a deferral at 301 (age 300) stamp 601,
    # which the scan at 600 takes; the stamp 602 (arrival at 0) waits for 900.
    grid = preset("postfix")
    assert grid.next_try(1, 301) == 601 and grid.next_attempt(1, 1, 301, 2) == 600
    assert grid.next_try(1, 301.5) == 601                   # still second 301
    assert grid.next_try(0, 301) == 602 and grid.next_attempt(0, 0, 301, 2) == 900


def test_postfix_bounce_queue_lifetime_for_mail_from_null_sender():
    base = preset("postfix", bounce_queue_lifetime="1d")
    assert base.lifetime == 5 * DAY and base.for_bounce().lifetime == DAY
    assert timeline(base.for_bounce()).gave_up_at == 4800 + 4200 * 20   # 88800 >= 86400
    # qmgr caps bounce_queue_lifetime at maximal_queue_lifetime.
    assert preset("postfix").with_lifetime(2 * DAY).for_bounce().lifetime == 2 * DAY
    assert preset("postfix").for_bounce().lifetime == 5 * DAY


# -- Exim ------------------------------------------------------------------------------
# F,2h,15m; G,16h,1h,1.5; F,4d,6h, measured from the first failure (t=0).
EXIM_TIMELINE = [
    0, 900, 1800, 2700, 3600, 4500, 5400, 6300, 7200,  # F: every 900 while failing <= 7200
    8100,    # fail at 7200 (<= 2h, still F): 7200+900
    11700,   # fail at 8100 > 2h -> G; previous gap 900 < 1h -> 3600: 8100+3600
    17100,   # previous gap 3600 -> 3600*1.5 = 5400: 11700+5400
    25200,   # 5400*1.5 = 8100
    37350,   # 8100*1.5 = 12150
    55575,   # 12150*1.5 = 18225
    82912,   # fail at 55575 <= 16h (57600): 18225*1.5 = 27337.5 -> 27337 (integer)
    104512,  # fail at 82912 > 16h -> F,4d,6h: +21600
    126112, 147712, 169312, 190912, 212512, 234112, 255712, 277312, 298912,
    320512, 342112,  # 82912 + 12*21600 = 342112 <= 4d (345600): one more
    363712,  # 342112+21600; its failure at 363712 > 345600: bounced
]


def test_exim_timeline_and_give_up():
    tl = timeline(preset("exim"))
    assert list(tl.attempts) == EXIM_TIMELINE
    assert tl.gave_up_at == 363712
    assert preset("exim").delay_warning == 24 * HOUR


def test_exim_rules_measured_from_first_failure_not_queueing():
    s = preset("exim")
    # Queued at 0, first failure at 9000 (e.g. the first try waited for a
    # queue run).  A failure at 10000 is 1000 s into the failures: F, +900.
    assert s.next_attempt(0, 9000, 10000, 2) == 10900
    # ...but the message's age still bounds the whole thing (retry.c's
    # received_time check): older than 4d -> bounced.
    assert s.next_attempt(0, 9000, 4 * DAY + 1, 40) is None


def test_exim_with_a_queue_runner_every_30_minutes():
    """Debian runs Exim with -q30m: a due retry waits for the next queue run
    (runs at 0, 1800, 3600, ...).  The pure schedule still agrees with the
    stateful retry record although the delays now vary."""
    tl = timeline(preset("exim", queue_interval=1800))
    assert list(tl.attempts) == [
        0, 1800, 3600, 5400, 7200,  # F: due 15 min after each failure -> the next run
        9000,    # fail at 7200 (<= 2h, F): due 8100 -> run 9000
        12600,   # fail at 9000 > 2h: G, previous gap 900 < 1h -> 3600: due 12600
        18000,   # 3600*1.5 = 5400: due 18000
        27000,   # 5400*1.5 = 8100: due 26100 -> run 27000
        39600,   # min(predicted 8100, actual 9000) = 8100 -> 12150: due 39150 -> 39600
        59400,   # min(12150, 12600)*1.5 = 18225: due 57825 -> run 59400
        81000,   # fail at 59400 > 16h: F,4d,6h: 59400+21600
    ] + [81000 + 21600 * j for j in range(1, 13)] + [
        361800,  # 81000+12*21600 = 340200 <= 4d; 340200+21600 fails past 4d
    ]
    assert tl.gave_up_at == 361800
    record, expected, t = EximRetryRecord(parse_exim_rules(EXIM_DEFAULT_RULES)), [], 0
    while t is not None:
        expected.append(t)
        due = record.fail(t, 0)
        t = None if due is None else math.ceil(due / 1800) * 1800
    assert list(tl.attempts) == expected


def test_exim_custom_rule_string():
    # The per-domain rule "dialup.example * F,2d,1h": every hour, and the
    # failure after 2 days bounces: 0, 3600, ..., 172800 (<= 2d, so one
    # more at 176400), whose failure at 176400 > 172800 bounces.
    tl = timeline(preset("exim", rules="F,2d,1h"))
    assert list(tl.attempts) == [3600 * i for i in range(50)]
    assert tl.gave_up_at == 176400


def test_exim_rule_parser():
    assert parse_exim_rules(EXIM_DEFAULT_RULES) == (
        EximRule("F", 7200, 900), EximRule("G", 57600, 3600, 1500), EximRule("F", 345600, 21600))
    assert str(parse_exim_rules("g,1d,30m,2")[0]) == "G,1d,30m,2"
    assert parse_exim_rules("F,1h30m,90s;")[0] == EximRule("F", 5400, 90)
    for bad in ["", "F,2h", "G,2h,15m", "X,1h,1m", "F,2h,0", "G,1h,1m,0.5", "F,2q,1m"]:
        with pytest.raises(ValueError):
            parse_exim_rules(bad)
    with pytest.raises(ValueError, match="randomised"):
        parse_exim_rules("H,1d,1h,2")


@pytest.mark.parametrize("rules", [EXIM_DEFAULT_RULES, "F,1h,10m; G,1d,30m,2; F,3d,4h",
                                   "G,2d,5m,1.3", "F,10m,1m; G,1h,2m,3; G,5h,1h,1.1; F,1d,2h"])
@pytest.mark.parametrize("duration", [0, 7, 128.6, 299.9, 300, 300.1, 899, 3599])
def test_exim_pure_schedule_matches_the_stateful_retry_record(rules, duration):
    """With every attempt taking the same time, the reconstruction of the
    previous gap is exact: same attempts as Exim's own retry record."""
    for queued_at in (0.0, 1234.5):
        record = EximRetryRecord(parse_exim_rules(rules))
        expected, t = [], queued_at
        while t is not None:
            expected.append(t)
            t = record.fail(t + duration, queued_at)
        tl = timeline(preset("exim", rules=rules), queued_at=queued_at, attempt_duration=duration)
        assert list(tl.attempts) == expected


# -- Exim's per-destination retry records (retry.c, transports/smtp.c) --------------------
# F,40s,6s: one rule, final cutoff 40 s after the destination's first failure.

def test_exim_hints_later_messages_wait_for_the_destinations_retry_time():
    hints, s = EximHints(), preset("exim", rules="F,40s,6s", per_host=True)
    assert hints.check("d", 0, 0, "a") == ("try", 0)          # no record yet
    assert hints.failed("d", s, 0, 0, "a") == 6               # A fails: first_failed 0
    assert hints.check("d", 3, 3, "b") == ("wait", 6)         # B, new, waits for the host
    assert hints.failed("d", s, 10, 0, "a") == 16             # failing 10 <= 40: F, +6
    assert hints.failed("d", s, 40, 0, "a") == 46             # 40 <= 40: still F
    # 50 > 40: no rule covers the failing interval: A times out, the record expires.
    assert hints.failed("d", s, 50, 0, "a") is None
    # B (received at 3, 47.5 s old, but the same holds at any age) bounces at
    # once: the host has been failing too long and its retry time (56, from
    # the final rule) is not reached.
    assert hints.check("d", 50.5, 3, "b") == ("fail", 56)
    assert hints.check("d", 56, 50, "c")[0] == "try"          # then one try for the next
    hints.answered("d", 50, "c")                              # the host answered: forgotten
    assert hints.check("d", 57, 57, "e") == ("try", 57)


def test_exim_hints_ultimate_address_timeout_and_the_round_ahead():
    hints, s = EximHints(), preset("exim", rules="F,40s,6s", per_host=True)
    hints.failed("d", s, 30, 30, "a")
    # A message older than the final cutoff is tried although the retry time
    # is not reached (retry_ultimate_address_timeout): received 0, now 41.
    assert hints.check("d", 32, 0, "old") == ("wait", 36)
    assert hints.check("d", 41, 0, "old")[0] == "try"
    # In a queue run the messages go one by one: while one round is under way
    # the next message waits for the retry time a failure would set (42 + 6).
    hints.trying("d", s)
    assert hints.check("d", 42, 30, "a") == ("wait", 48)
    assert hints.failed("d", s, 42, 30, "a") == 48


def test_exim_record_matches_retry_c_on_the_received_time_check():
    # A message received before the destination's first failure and older
    # than the final cutoff times out even while a rule still covers the
    # failing interval (retry.c: "on queue longer than maximum retry").
    record = EximRetryRecord(parse_exim_rules("F,40s,6s"))
    assert record.fail(10, received_time=0) == 16
    assert record.fail(41, received_time=0) is None and not record.expired
    assert record.next_try == 41                              # the next message gets a try


def test_exim_bounces_are_frozen_until_ignore_bounce_errors_after():
    # deliver.c: a bounce that fails permanently younger than
    # ignore_bounce_errors_after is frozen, thawed at the first queue run
    # after it, tried once more and discarded if that fails; one whose
    # temporary failures time out under the rules is discarded at once.
    s = preset("exim", rules="F,40s,6s", ignore_bounce_errors_after=60)
    bounce = s.for_bounce()
    assert s.thawed(0, 42) is None                            # not a bounce: bounced
    assert bounce.thawed(0, 42) == 60 and bounce.thawed(0, 60.5) is None
    assert preset("exim", rules="F,40s,6s", ignore_bounce_errors_after=60,
                  queue_interval=7).for_bounce().thawed(0, 42) == 63
    assert bounce.next_attempt(0, 0, 42, 8) is None           # rules timed out: discarded
    # The ultimate address timeout: the first queue run after the final cutoff.
    assert preset("exim", rules="F,40s,6s", queue_interval=5).ultimate_timeout(0.2) == 45
    assert preset("exim", rules="F,40s,6s", queue_interval=5).ultimate_timeout(0) == 45


def test_exim_per_host_in_the_queue_holds_later_messages_back():
    """Through the simulated queue: A at 0 and B at 20 to a destination that
    refuses, queue runs every 5 s.  B waits for the destination's retry time
    A's failures set; both bounce when the destination has failed for more
    than 40 s, B at 30 s of age."""
    sched = preset("exim", rules="F,40s,6s", per_host=True, queue_interval=5, delay_warning=0)
    a, b = exim_queue_run(sched, submit_at=(0.2, 20.2), until=120)
    # A at arrival; then one round per queue run at or after each retry time
    # (+6), taken by A or B, whichever the run takes first (Exim's order is
    # random unless queue_run_in_order); every run the other one waits.  At
    # 45 A is older than the 40 s cutoff: tried although the retry time (46)
    # is not reached, it times out and the destination's record expires; B,
    # 25 s old, bounces without a try at the first visit after that (the
    # same run if the run takes it after A, here the next).
    # benchmarks/retry_exim.py runs the same story on a real Exim 4.96.
    assert sorted(a.attempts + b.attempts) == [0.2, 10, 20, 30, 40, 45]
    assert a.bounced == 45 and b.bounced in (45, 50)
    assert b.text.startswith("5.4.0 all hosts have been failing")
    assert a.waits + b.waits == 9        # every run a message is not tried, it waits
    # Per message (per_host off) B would have had its own timeline.
    a2, b2 = exim_queue_run(preset("exim", rules="F,40s,6s", queue_interval=5, delay_warning=0),
                            submit_at=(0.2, 20.2), until=120)
    assert b2.attempts[:2] == [20.2, 30] and b2.waits == 0


@dataclass
class QueueFate:
    attempts: list[float]
    waits: int
    bounced: float | None
    text: str


def exim_queue_run(schedule, submit_at, until):
    """Messages to u@b.example, whose MX refuses connections, through a
    simulated queue on a.example: what became of each."""
    world = World(seed=1)
    a = world.add_host("a.example", "192.0.2.1", link=LinkSpec(latency=0.0))
    world.add_host("mx.b.example", "192.0.2.2", link=LinkSpec(latency=0.0))
    world.set_zones(zones({"b.example": ["@ MX 10 mx", "mx A 192.0.2.2"],
                           "a.example": ["@ A 192.0.2.1"]}))
    q = queue_for(a, config=QueueConfig(retry=schedule, local_domains=("a.example",)))
    world.run_until_complete(a, q.start())
    msgs = []
    for t in submit_at:
        world.run(until=t)
        msgs.append(world.run_until_complete(
            a, q.submit("s@a.example", ["u@b.example"], b"Subject: x\r\n\r\nx\r\n")))
    world.run(until=until)
    fates = []
    for msg in msgs:
        mine = [e for e in world.events if getattr(e, "msg", None) == msg]
        bounced = [e for e in mine if isinstance(e, ev.Bounced)]
        fates.append(QueueFate(
            attempts=[round(e.t, 6) for e in mine if isinstance(e, ev.AttemptStarted)],
            waits=sum(1 for e in mine if isinstance(e, ev.Deferred)
                      and (e.code, e.text) == RETRY_TIME_NOT_REACHED),
            bounced=round(bounced[0].t, 6) if bounced else None,
            text=bounced[0].text if bounced else ""))
    return fates


# -- Sendmail --------------------------------------------------------------------------

def test_sendmail_timeline_and_give_up():
    # -q30m: queue runs at 0, 1800, 3600, ...  Timeout.queuereturn 5d = 432000
    # = 240 runs.  Tried on arrival at 0, then in every run; the failure in
    # the run at 432000 is at or after the lifetime: returned then.
    tl = timeline(preset("sendmail"))
    assert list(tl.attempts) == [1800 * i for i in range(241)]
    assert tl.gave_up_at == 432000
    assert preset("sendmail").delay_warning == 4 * HOUR


def test_sendmail_queue_runs_are_global_not_per_message():
    # Queued at 1000: tried at once, then at the next run, 1800 (only 800 s
    # later: sendmail has no per-message minimum), then every 1800.  Give-up:
    # the first run at or after 1000+432000 = 433000 is 241*1800 = 433800.
    tl = timeline(preset("sendmail"), queued_at=1000)
    assert list(tl.attempts[:4]) == [1000, 1800, 3600, 5400]
    assert tl.gave_up_at == 433800
    assert len(tl.attempts) == 1 + 241
    # MinQueueAge 15m: a failure at 1700 skips the run at 1800 (100 s later).
    assert preset("sendmail", MinQueueAge="15m").next_attempt(1000, 1700, 1700, 1) == 3600


# -- RFC 5321 and custom -----------------------------------------------------------------

def test_rfc5321_plain():
    # Every 30 min; give up at the first failure at or after 5d: 0..432000 step 1800.
    s = preset("rfc5321")
    assert (s.min_backoff, s.max_backoff, s.lifetime) == (1800, 1800, 5 * DAY)
    tl = timeline(s)
    assert list(tl.attempts) == [1800 * i for i in range(241)]
    assert tl.gave_up_at == 432000


def test_custom_geometric():
    # Gaps 600, 1200, 2400, 4800, then capped at 7200; lifetime 2d = 172800.
    s = preset("custom", min_backoff=600, max_backoff="2h", factor=2, lifetime="2d")
    tl = timeline(s)
    assert list(tl.attempts[:7]) == [
        0, 600,   # 0+600
        1800,     # 600+1200
        4200,     # 1800+2400
        9000,     # 4200+4800
        16200,    # 9000+7200 (9600 capped)
        23400,    # +7200 from here on
    ]
    # 16200 + 7200*22 = 174600 is the first failure at or after 172800.
    assert tl.attempts[-1] == tl.gave_up_at == 174600
    assert list(tl.attempts[5:]) == [16200 + 7200 * i for i in range(23)]


def test_custom_fixed_interval_and_try_once():
    s = preset("custom", interval="1h", lifetime="3h")
    assert list(timeline(s).attempts) == [0, 3600, 7200, 10800]
    assert timeline(preset("custom", lifetime=0)).attempts == (0,)


# -- per-domain lifetimes ----------------------------------------------------------------

def test_postfix_two_day_lifetime():
    # Same steps as the default; the failure at 4800 + 4200*40 = 172800 has
    # age >= 172800: returned there.
    tl = timeline(preset("postfix").with_lifetime(2 * DAY))
    assert tl.attempts[-2:] == (168600, 172800)
    assert tl.gave_up_at == 172800


def test_exim_lifetime_override_moves_the_final_cutoff():
    two_days = preset("exim").with_lifetime("2d")
    assert [str(r) for r in two_days.rules] == ["F,2h,15m", "G,16h,1h,1.5", "F,2d,6h"]
    # Same as the default up to 169312 = 82912 + 4*21600 <= 172800; then
    # 190912, whose failure is past 2d.
    tl = timeline(two_days)
    assert list(tl.attempts) == EXIM_TIMELINE[:20] + [190912]
    week = preset("exim", lifetime="7d")
    assert str(week.rules[-1]) == "F,1w,6h" and week.lifetime == 7 * DAY
    assert [str(r) for r in preset("exim").with_lifetime("1h").rules] == ["F,1h,15m"]


@pytest.mark.parametrize("name", ["postfix", "sendmail", "rfc5321", "custom", "exim"])
def test_every_preset_takes_a_lifetime_override_and_extends(name):
    base = preset(name)
    short, long = base.with_lifetime(2 * DAY), base.with_lifetime(10 * DAY)
    assert (short.lifetime, long.lifetime) == (2 * DAY, 10 * DAY)
    assert base.lifetime == 5 * DAY or name == "exim"
    assert timeline(short).gave_up_at >= 2 * DAY
    assert timeline(long).gave_up_at >= 10 * DAY > timeline(base).gave_up_at


# -- presets and parsing ---------------------------------------------------------------

def test_presets_and_their_declared_bounds():
    assert preset_names() == ["custom", "exim", "postfix", "rfc5321", "sendmail"]
    assert isinstance(preset("postfix"), PostfixSchedule)
    assert isinstance(preset("EXIM"), EximSchedule)
    assert isinstance(preset("sendmail"), SendmailSchedule)
    assert isinstance(preset("custom"), CustomSchedule)
    for name in preset_names():
        assert isinstance(preset(name), RetrySchedule)
    p = preset("postfix")
    # min_backoff: 300 less the whole-second stamp (< 1 s) and the scan's 1 s of slack.
    assert (p.min_backoff, p.max_backoff, p.lifetime, p.delay_warning) == (298, 4300, 5 * DAY, None)
    e = preset("exim")
    # Largest gap: the last G step 27337 s (see the timeline), not the 6 h F.
    assert (e.min_backoff, e.max_backoff, e.lifetime) == (900, 27337, 4 * DAY)
    assert preset("postfix", delay_warning_time="4h").delay_warning == 4 * HOUR
    assert preset("postfix", delay_warning_time=0).delay_warning is None
    assert preset("sendmail", queuereturn="2d", queuewarn=0).lifetime == 2 * DAY


def test_bad_presets_are_refused_with_a_message():
    with pytest.raises(ValueError, match="unknown retry preset"):
        preset("qmail")
    with pytest.raises(ValueError, match="no_such_knob"):
        preset("postfix", no_such_knob=1)
    with pytest.raises(ValueError):
        preset("postfix", minimal_backoff_time=5000)  # above the maximum
    with pytest.raises(ValueError):
        preset("custom", factor=0.5)


# -- properties --------------------------------------------------------------------------

durations = st.floats(min_value=1, max_value=3 * DAY).map(round)


@st.composite
def schedules(draw):
    kind = draw(st.sampled_from(["preset", "postfix", "custom", "exim", "sendmail"]))
    if kind == "preset":
        s = preset(draw(st.sampled_from(preset_names())))
    elif kind == "postfix":
        lo = draw(st.integers(60, 3600))
        s = preset("postfix", minimal_backoff_time=lo,
                   maximal_backoff_time=lo + draw(st.integers(0, 10000)),
                   queue_run_delay=draw(st.sampled_from([0, 60, 300, 1000])))
    elif kind == "custom":
        lo = draw(st.integers(60, 7200))
        s = preset("custom", min_backoff=lo, max_backoff=lo * draw(st.integers(1, 20)),
                   factor=draw(st.sampled_from([1, 1.5, 2, 3])),
                   queue_interval=draw(st.sampled_from([0, 300])))
    elif kind == "sendmail":
        s = preset("sendmail", q=draw(st.sampled_from([600, 1800, 3600])),
                   MinQueueAge=draw(st.sampled_from([0, 300, 2000])))
    else:
        parts, cutoff = [], 0
        for _ in range(draw(st.integers(1, 3))):
            cutoff += draw(st.integers(1800, DAY))
            interval = draw(st.integers(60, 4 * 3600))
            if draw(st.booleans()):
                parts.append(f"G,{cutoff},{interval},{draw(st.sampled_from([1.2, 1.5, 2]))}")
            else:
                parts.append(f"F,{cutoff},{interval}")
        s = preset("exim", rules="; ".join(parts))
    return s.with_lifetime(draw(durations))


def whole_seconds(schedule) -> float:
    """How far a schedule's clock rounds: Postfix's qmgr keeps whole seconds."""
    return 1.0 if isinstance(schedule, PostfixSchedule) else 0.0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=schedules(), queued_at=st.floats(0, 1e6),
       delays=st.lists(st.floats(0, 900), min_size=1, max_size=8))
def test_retry_discipline_properties(schedule, queued_at, delays):
    tl = timeline(schedule, queued_at=queued_at,
                  attempt_duration=lambda n: delays[n % len(delays)])
    attempts = tl.attempts
    assert attempts[0] == queued_at
    assert all(b > a for a, b in zip(attempts, attempts[1:])), "monotonic"
    for n, (start, nxt) in enumerate(zip(attempts, attempts[1:]), 1):
        gap = nxt - (start + delays[n % len(delays)])  # from the failure to the next try
        assert schedule.min_backoff - 1e-6 <= gap <= schedule.max_backoff + 1e-6, (n, gap)
    # Never given up before the lifetime (Postfix counts whole seconds, so up
    # to 1 s early), never tried past lifetime + max_backoff.
    assert tl.gave_up_at - queued_at >= schedule.lifetime - whole_seconds(schedule) - 1e-6
    assert attempts[-1] <= queued_at + schedule.lifetime + schedule.max_backoff + 1e-6
    # Deterministic: the same question gets the same answer.
    assert timeline(schedule, queued_at=queued_at,
                    attempt_duration=lambda n: delays[n % len(delays)]) == tl


@settings(max_examples=100, deadline=None)
@given(schedule=schedules(), queued_at=st.floats(0, 1e6), age=st.floats(0, 12 * DAY),
       attempts=st.integers(1, 200))
def test_next_attempt_is_after_now_or_none_only_past_lifetime(schedule, queued_at, age, attempts):
    now = queued_at + age
    age = now - queued_at     # what the schedule sees, after rounding (1 + 1.0000000000000002 == 2)
    nxt = schedule.next_attempt(queued_at, queued_at, now, attempts)
    if nxt is None:
        assert age >= schedule.lifetime - whole_seconds(schedule)
    else:
        assert nxt > now
        assert age <= schedule.lifetime + whole_seconds(schedule)
        assert not math.isnan(nxt)
