"""The SMTP feed's post-queue chain (mta/feed/chain.py) and its role
(mta.roles.SmtpFeed): virus, spam levels and actions, errors, costs."""
from __future__ import annotations

import asyncio

import pytest

from mta.feed.chain import DEFAULT_COSTS, FeedFilters, StageCost
from mta.filters.levels import SpamAction, SpamLevel, SpamSettings
from mta.filters.spam import GTUBE, BuiltinScorer, SpamScore
from mta.filters.virus import EICAR, BuiltinScanner, VirusVerdict
from mta.policy.greylist import GreylistStage
from mta.roles import RoleError, SmtpFeed

HAM = b"Subject: lunch\r\nMessage-ID: <a@b.example>\r\n\r\nsee you at noon\r\n"
SPAM_LOW = b"Subject: cheap viagra\r\nMessage-ID: <a@b.example>\r\n\r\nbuy now\r\n"     # 3.0
SPAM_MED = (b"Subject: cheap viagra\r\nMessage-ID: <a@b.example>\r\n\r\n"
            b"you are a lottery winner\r\n")                                          # 5.5
SPAM_HIGH = b"Subject: x\r\nMessage-ID: <a@b.example>\r\n\r\n" + GTUBE + b"\r\n"       # 1000
VIRUS = b"Subject: invoice\r\nMessage-ID: <a@b.example>\r\n\r\n" + EICAR + b"\r\n"
ALL = {SpamLevel.NONE: SpamAction.NONE, SpamLevel.LOW: SpamAction.HEADER,
       SpamLevel.MED: SpamAction.SUBJECT, SpamLevel.HIGH: SpamAction.DELETE}


def run(world, coro):
    host = world.add_host("feed.provider.example", "192.0.2.80")
    return world.run_until_complete(host, coro)


def chain(spam=SpamSettings(), **kw) -> FeedFilters:
    return FeedFilters(BuiltinScanner(), BuiltinScorer(), spam, **kw)


def test_virus_found_is_deleted_with_its_signature(world):
    r = run(world, chain().run(VIRUS))
    assert r.discard == ("virus", "Eicar-Test-Signature") and not r.tempfail
    assert [(v.stage, v.outcome) for v in r.verdicts] == [("virus", "infected")]


def test_spam_off_scores_nothing_and_changes_nothing(world):
    r = run(world, chain().run(SPAM_HIGH))
    assert r.body == SPAM_HIGH and r.discard is None
    assert [(v.stage, v.outcome, v.level, v.action) for v in r.verdicts] == [
        ("virus", "clean", "", ""), ("spam", "off", "none", "none")]


@pytest.mark.parametrize("msg,level,action", [
    (HAM, "none", "none"), (SPAM_LOW, "low", "header"), (SPAM_MED, "med", "subject"),
    (SPAM_HIGH, "high", "delete")])
def test_every_level_gets_its_action(world, msg, level, action):
    r = run(world, chain(SpamSettings(enabled=True, actions=ALL)).run(msg))
    v = r.verdicts[-1]
    assert (v.stage, v.outcome, v.level, v.action) == ("spam", "scored", level, action)
    if action == "delete":
        assert r.discard is not None and r.discard[0] == "spam" and "level high" in r.discard[1]
    elif action == "header":
        assert r.body == b"X-Spam-Level: low score=3.0\r\n" + msg
    elif action == "subject":
        assert r.body.startswith(b"Subject: [SPAM: med] cheap viagra\r\n")
    else:
        assert r.body == msg


class Broken:
    name = "broken"

    def __init__(self, how: str) -> None:
        self.how = how

    async def scan(self, message: bytes) -> VirusVerdict:
        if self.how == "hang":
            await asyncio.sleep(3600)
        if self.how == "raise":
            raise ConnectionResetError("clamd died")
        return VirusVerdict.error(self.name, "clamd: connection refused")

    async def score(self, message: bytes) -> SpamScore:
        if self.how == "hang":
            await asyncio.sleep(3600)
        return SpamScore.failed(self.name, "spamd down")


@pytest.mark.parametrize("how,detail", [("error", "connection refused"), ("raise", "clamd died"),
                                        ("hang", "timed out after 60 s")])
def test_a_scanner_error_is_a_tempfail_never_a_pass(world, how, detail):
    r = run(world, FeedFilters(Broken(how), BuiltinScorer(), SpamSettings()).run(HAM))
    assert r.tempfail and detail in r.tempfail and r.discard is None
    assert [(v.stage, v.outcome) for v in r.verdicts] == [("virus", "error")]


def test_a_scorer_error_is_a_tempfail(world):
    r = run(world, FeedFilters(BuiltinScanner(), Broken("error"),
                               SpamSettings(enabled=True)).run(HAM))
    assert r.tempfail == "spam: spamd down"
    assert [(v.stage, v.outcome) for v in r.verdicts] == [("virus", "clean"), ("spam", "error")]


def test_service_times_and_processes_turn_load_into_queueing_delay(world):
    host = world.add_host("feed.provider.example", "192.0.2.80")
    f = chain(SpamSettings(enabled=True))

    async def five():
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        results = await asyncio.gather(*(f.run(HAM) for _ in range(5)))
        return results, loop.time() - t0

    results, took = world.run_until_complete(host, five())
    spam = [r.verdicts[-1] for r in results]
    virus = DEFAULT_COSTS["virus"].service_time(len(HAM))
    # 2 spamd children at 150 ms: 5 messages finish in 3 rounds
    assert took == pytest.approx(virus + 3 * 0.150)
    assert sorted(round(v.waited, 6) for v in spam) == [0.0, 0.0, 0.15, 0.15, 0.3]
    assert all(v.service == pytest.approx(0.150) for v in spam)


def test_cost_table_is_the_measured_one():
    assert DEFAULT_COSTS["virus"].service_time(140_000) == pytest.approx(0.015)
    assert (DEFAULT_COSTS["virus"].processes, DEFAULT_COSTS["spam"].processes) == (10, 2)
    assert DEFAULT_COSTS["spam"].service_time(10**6) == pytest.approx(0.150)
    with pytest.raises(ValueError):
        StageCost(base=0.1, per_kb=0, processes=0)


# -- the role -------------------------------------------------------------------

def test_feed_refuses_to_run_without_its_virus_scan():
    with pytest.raises(RoleError, match=r"smtp_feed\.virus_scan: .*This is not optional"):
        SmtpFeed(hostname="feed.provider.example", relay_domains=("c.example",),
                 virus_scan=False)


def test_feed_defaults_greylisting_on_after_relay_control(world):
    host = world.add_host("feed.provider.example", "192.0.2.80")
    role = SmtpFeed(hostname=host.name, relay_domains=("c.example",))
    assert role.greylisting is not None and role.greylisting.delay == 300
    assert not role.spam.enabled
    server = role.build_server(host.ctx, None)
    names = [s.name for s in server.chain.stages]
    assert names[-3:] == ["relay", "greylist", "recipient_limit"]
    assert isinstance(server.chain.stages[-2], GreylistStage)
    off = SmtpFeed(hostname=host.name, relay_domains=("c.example",), greylisting=None)
    assert "greylist" not in [s.name for s in off.build_server(host.ctx, None).chain.stages]


def test_feed_builds_real_daemon_adapters_for_live_use():
    role = SmtpFeed(hostname="feed.provider.example", relay_domains=("c.example",),
                    virus_scanner="clamd", spam_scorer="spamd", clamd_address="127.0.0.1:3310",
                    modelled_costs=False)
    f = role.build_filters()
    assert (f.scanner.name, f.scorer.name) == ("clamd", "spamd")
    assert (f.scanner.host, f.scanner.port) == ("127.0.0.1", 3310)
    with pytest.raises(RoleError, match="clamd_address"):
        SmtpFeed(hostname="f.example", relay_domains=("c.example",), clamd_address="nowhere")
