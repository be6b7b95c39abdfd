"""The queue's post-queue filter step (mta/queue/filtering.py) with the
feed's chain, in a simulated world: accepted, filtered, then delivered."""
from __future__ import annotations

import asyncio

import pytest

from mta import events as ev
from mta.delivery.client import DeliveryConfig
from mta.feed.chain import FeedFilters
from mta.filters.levels import SpamSettings
from mta.filters.spam import BuiltinScorer
from mta.filters.virus import BuiltinScanner, VirusVerdict
from mta.queue.manager import QueueManager
from mta.queue.policy import QueueConfig
from mta.queue.store import MemoryStore
from sim.world.disk import SimulatedDisk
from helpers.queue import FixedSchedule, Recorder, serve, zones
from test_feed_chain import HAM, SPAM_LOW, SPAM_MED, VIRUS, ALL

ZONE = {"c.example": ["@ MX 10 mx", "mx A 192.0.2.2"]}
RCPTS = ["ann@c.example", "art@c.example"]


class Flaky:
    """A scanner that fails ``failures`` times, then is the built-in one."""

    name = "flaky"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def scan(self, message: bytes) -> VirusVerdict:
        self.calls += 1
        if self.calls <= self.failures:
            return VirusVerdict.error(self.name, "clamd: connection refused")
        return BuiltinScanner().scan_sync(message)


def setup(world, content, lifetime=3600.0, disk=None):
    feed = world.add_host("feed.provider.example", "192.0.2.80")
    mx = world.add_host("mx.c.example", "192.0.2.2")
    world.set_zones(zones(ZONE))
    final = Recorder("client")
    world.run_until_complete(mx, serve(final, mx.name))
    q = QueueManager(feed.ctx, MemoryStore(disk or SimulatedDisk()),
                     QueueConfig(retry=FixedSchedule(interval=300, lifetime=lifetime)),
                     DeliveryConfig(connect_timeout=30, command_timeout=60),
                     content_filter=content)
    world.run_until_complete(feed, q.start(restarted=False))
    return feed, q, final


def accept(world, feed, q, data, rcpts=RCPTS):
    return world.run_until_complete(feed, q.accept(
        conn="c1", client_ip="203.0.113.25", helo="mta.sender.example",
        mail_from="sue@sender.example", rcpts=list(rcpts), acknowledged=list(rcpts), data=data))


def kinds(world, *types):
    return [e for e in world.sink.events if isinstance(e, types)]


def test_virus_is_deleted_per_recipient_before_any_attempt(world):
    feed, q, final = setup(world, FeedFilters(BuiltinScanner(), BuiltinScorer(), SpamSettings()))
    msg = accept(world, feed, q, VIRUS)
    world.run(until=600)
    gone = kinds(world, ev.Discarded)
    assert [(d.msg, d.rcpt, d.policy, d.reason) for d in gone] == [
        (msg, r, "virus", "Eicar-Test-Signature") for r in RCPTS]
    assert not kinds(world, ev.AttemptStarted) and final.messages == []
    assert q.state.pending() == 0


def test_clean_mail_is_filtered_once_then_delivered(world):
    feed, q, final = setup(world, FeedFilters(BuiltinScanner(), BuiltinScorer(), SpamSettings()))
    accept(world, feed, q, HAM)
    world.run(until=600)
    verdicts = kinds(world, ev.FilterVerdict)
    assert [(v.stage, v.outcome, v.complete) for v in verdicts] == [
        ("virus", "clean", False), ("spam", "off", True)]
    first_attempt = kinds(world, ev.AttemptStarted)[0]
    assert first_attempt.t >= verdicts[-1].t
    assert sorted(final.rcpts()) == RCPTS and final.messages[0][2].endswith(b"noon\r\n")


@pytest.mark.parametrize("data,marker", [(SPAM_LOW, b"X-Spam-Level: low"),
                                         (SPAM_MED, b"Subject: [SPAM: med] ")])
def test_spam_header_and_subject_actions_change_what_is_delivered(world, data, marker):
    spam = SpamSettings(enabled=True, actions=ALL)
    feed, q, final = setup(world, FeedFilters(BuiltinScanner(), BuiltinScorer(), spam))
    accept(world, feed, q, data)
    world.run(until=600)
    assert len(final.messages) == 1 and marker in final.messages[0][2]


def test_a_scanner_error_defers_and_the_retry_filters_again(world):
    scanner = Flaky(failures=2)
    feed, q, final = setup(world, FeedFilters(scanner, BuiltinScorer(), SpamSettings()))
    accept(world, feed, q, HAM, rcpts=RCPTS[:1])
    world.run(until=3000)
    outcomes = [v.outcome for v in kinds(world, ev.FilterVerdict) if v.stage == "virus"]
    assert outcomes == ["error", "error", "clean"]
    deferred = kinds(world, ev.Deferred)
    assert [(d.code, d.text.split(" (")[0]) for d in deferred] == [
        (451, "4.7.1 Message content could not be scanned, try again later")] * 2
    assert deferred[1].t - deferred[0].t == pytest.approx(300, abs=0.01)   # the queue's schedule
    assert final.rcpts() == RCPTS[:1]


def test_a_scanner_that_never_recovers_bounces_at_the_lifetime_never_passes(world):
    feed, q, final = setup(world, FeedFilters(Flaky(failures=10**6), BuiltinScorer(),
                                              SpamSettings()), lifetime=1000.0)
    msg = accept(world, feed, q, HAM, rcpts=RCPTS[:1])
    world.run(until=5000)
    assert final.messages == []
    bounced = [b for b in kinds(world, ev.Bounced) if b.msg == msg]
    assert [(b.rcpt, b.code) for b in bounced] == [(RCPTS[0], 451)]


def test_a_crash_before_filtering_filters_again_after_restart(world):
    disk = SimulatedDisk()
    scanner = Flaky(failures=0)

    class Slow(FeedFilters):
        async def run(self, data):
            await asyncio.sleep(10)
            return await super().run(data)

    feed, q, final = setup(world, Slow(scanner, BuiltinScorer(), SpamSettings()), disk=disk)
    accept(world, feed, q, HAM)
    world.run(until=5)
    q.crash()
    q2 = QueueManager(feed.ctx, MemoryStore(disk), q.config, q.deliverer.config,
                      content_filter=Slow(scanner, BuiltinScorer(), SpamSettings()))
    world.run_until_complete(feed, q2.start())
    world.run(until=600)
    assert scanner.calls == 1                  # the first run never finished
    assert sorted(final.rcpts()) == RCPTS


def test_mail_not_received_over_smtp_is_not_filtered(world):
    feed, q, final = setup(world, FeedFilters(BuiltinScanner(), BuiltinScorer(), SpamSettings()))
    world.run_until_complete(feed, q.submit("sue@sender.example", RCPTS[:1], VIRUS))
    world.run(until=600)
    assert not kinds(world, ev.FilterVerdict) and final.rcpts() == RCPTS[:1]


def _zip_bomb() -> bytes:
    import base64
    import io
    import zipfile
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros.bin", b"\0" * (4 << 20))      # 4 MiB at ~1000:1
    b64 = base64.encodebytes(out.getvalue()).replace(b"\n", b"\r\n")
    return (b"Subject: bomb\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
            b"Content-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + b64 + b"--b--\r\n")


@pytest.mark.parametrize("data,outcome", [
    (_zip_bomb(), "error"),                                           # not inspected: tempfail
    (b"", "clean"),                                                   # 0 bytes: nothing to find
    (b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nbroken", "clean"),
])
def test_hostile_content_gets_a_defined_outcome(world, data, outcome):
    feed, q, final = setup(world, FeedFilters(BuiltinScanner(), BuiltinScorer(), SpamSettings()))
    accept(world, feed, q, data, rcpts=RCPTS[:1])
    world.run(until=200)
    first = [v for v in kinds(world, ev.FilterVerdict) if v.stage == "virus"][0]
    assert first.outcome == outcome
    if outcome == "error":
        assert final.messages == [] and kinds(world, ev.Deferred)[0].code == 451
        assert "compression ratio above 100:1" in first.detail
    else:
        assert final.rcpts() == RCPTS[:1]
