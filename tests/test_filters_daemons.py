"""Real clamd and spamd against the built-in scanners (slow suite).

Needs the Debian packages ``clamav-daemon spamassassin spamd``; without
them these tests fail with the apt line (never skip), see
tests/helpers/filter_daemons.py.
"""
from __future__ import annotations

import asyncio
import os
import signal

import pytest

from mta.filters.clamav import ClamdScanner
from mta.filters.levels import SpamAction, SpamLevel, SpamSettings, apply
from mta.filters.mime import WalkLimits
from mta.filters.spam import BuiltinScorer
from mta.filters.spamd import SpamdScorer
from mta.filters.virus import BuiltinScanner, Status
from helpers import filter_daemons as daemons
from helpers.filter_suites import SpamScorerSuite, VirusScannerSuite, base_name
from helpers.filter_corpus import (GTUBE_MAIL, HAM, RULE_SPAM, SPAM_CORPUS, TEXT, VIRUS_CORPUS,
                                   attachment, multipart, zip_of)

pytestmark = pytest.mark.slow

# The built-in scanner with the limits the test clamd is configured with.
MATCHED = BuiltinScanner(limits=WalkLimits(max_total_bytes=daemons.SCAN_MAX_TOTAL,
                                           max_parts=daemons.SCAN_MAX_FILES,
                                           max_archive_depth=daemons.SCAN_MAX_RECURSION))


@pytest.fixture(scope="module")
def clamd(tmp_path_factory):
    with daemons.clamd(tmp_path_factory.mktemp("clamd")) as daemon:
        yield daemon


@pytest.fixture(scope="module")
def spamd(tmp_path_factory):
    with daemons.spamd(tmp_path_factory.mktemp("spamd")) as daemon:
        yield daemon


class TestClamd(VirusScannerSuite):
    @pytest.fixture
    def scanner(self, clamd):
        return ClamdScanner("127.0.0.1", clamd.port, timeout=60)


class TestSpamd(SpamScorerSuite):
    @pytest.fixture
    def scorer(self, spamd):
        return SpamdScorer("127.0.0.1", spamd.port, timeout=60)


def scan_both(clamd, message: bytes):
    real = asyncio.run(ClamdScanner("127.0.0.1", clamd.port, timeout=60).scan(message))
    return real, MATCHED.scan_sync(message)


@pytest.mark.parametrize("name", sorted(VIRUS_CORPUS))
def test_clamd_and_builtin_agree_on_the_corpus(clamd, name):
    message, _ = VIRUS_CORPUS[name]
    real, builtin = scan_both(clamd, message)
    assert real.status is builtin.status, (real, builtin)
    assert [base_name(s) for s in real.signatures] == list(builtin.signatures)


def test_zip_bombs_are_errors_for_both(clamd):
    too_big = multipart([TEXT, attachment("application/zip", zip_of(
        [("a.bin", b"\0" * (12 * 1024 * 1024)), ("b.bin", b"\0" * (12 * 1024 * 1024))]))])
    too_many = multipart([TEXT, attachment("application/zip", zip_of(
        [(f"f{i}.txt", b"x") for i in range(daemons.SCAN_MAX_FILES + 50)]))])
    for message in (too_big, too_many):
        real, builtin = scan_both(clamd, message)
        assert real.status is Status.ERROR and "Limits.Exceeded" in real.reason, real
        assert builtin.status is Status.ERROR, builtin
        assert real.reply == builtin.reply and real.reply.code == 451


def test_stopped_clamd_times_out_then_recovers(clamd):
    scanner = ClamdScanner("127.0.0.1", clamd.port, timeout=1.0)
    os.kill(clamd.pid, signal.SIGSTOP)
    try:
        verdict = asyncio.run(scanner.scan(HAM))
    finally:
        os.kill(clamd.pid, signal.SIGCONT)
    assert verdict.status is Status.ERROR and "timed out" in verdict.reason
    assert verdict.reply.code == 451
    assert asyncio.run(ClamdScanner("127.0.0.1", clamd.port, timeout=30).scan(HAM)).status \
        is Status.CLEAN


def test_dead_clamd_is_an_error(tmp_path):
    with daemons.clamd(tmp_path) as own:
        scanner = ClamdScanner("127.0.0.1", own.port, timeout=5)
        assert asyncio.run(scanner.ping())
        os.kill(own.pid, signal.SIGKILL)
        own.proc.wait(timeout=10)
        verdict = asyncio.run(scanner.scan(VIRUS_CORPUS["eicar-zip"][0]))
    assert verdict.status is Status.ERROR and verdict.reply.code == 451


# -- spamd ------------------------------------------------------------------

ON = SpamSettings(enabled=True)


@pytest.mark.parametrize("name", sorted(SPAM_CORPUS))
def test_spamd_and_builtin_levels_agree_on_the_corpus(spamd, name):
    message, _ = SPAM_CORPUS[name]
    real = asyncio.run(SpamdScorer("127.0.0.1", spamd.port, timeout=60).score(message))
    assert ON.decide(BuiltinScorer().score_sync(message)).level is ON.decide(real).level


def test_spamd_scores_gtube_about_1000_and_ham_low(spamd):
    scorer = SpamdScorer("127.0.0.1", spamd.port, timeout=60)
    gtube = asyncio.run(scorer.score(GTUBE_MAIL))
    ham = asyncio.run(scorer.score(HAM))
    assert gtube.score >= 1000 and "GTUBE" in gtube.rule_names
    assert ham.score < ON.thresholds.low, ham
    assert sum(h.score for h in gtube.rules) == pytest.approx(gtube.score, abs=0.5)


def test_spamd_and_builtin_name_the_same_rules_on_rule_spam(spamd):
    real = asyncio.run(SpamdScorer("127.0.0.1", spamd.port, timeout=60).score(RULE_SPAM))
    builtin = BuiltinScorer().score_sync(RULE_SPAM)
    shared = {"DRUGS_ERECTILE", "INVALID_MSGID", "MIME_HTML_ONLY", "SUBJ_ALL_CAPS"}
    assert shared <= set(real.rule_names) and shared <= set(builtin.rule_names)
    assert ON.decide(real).level in (SpamLevel.MED, SpamLevel.HIGH)
    assert ON.decide(builtin).level in (SpamLevel.MED, SpamLevel.HIGH)


def test_every_action_on_a_spamd_verdict(spamd):
    real = asyncio.run(SpamdScorer("127.0.0.1", spamd.port, timeout=60).score(RULE_SPAM))
    for action in SpamAction:
        settings = SpamSettings(enabled=True, actions={SpamLevel.NONE: SpamAction.NONE,
                                                       SpamLevel.LOW: action,
                                                       SpamLevel.MED: action,
                                                       SpamLevel.HIGH: action})
        decided = settings.decide(real)
        new, done = apply(decided, RULE_SPAM)
        if action is SpamAction.DELETE:
            assert new is None
        elif action is SpamAction.SUBJECT:
            assert f"Subject: [SPAM: {decided.level.value}] CHEAP".encode() in new
        elif action is SpamAction.HEADER:
            assert new.startswith(f"X-Spam-Level: {decided.level.value}".encode())
        else:
            assert new == RULE_SPAM


def test_dead_spamd_is_a_failed_score(tmp_path):
    with daemons.spamd(tmp_path) as own:
        scorer = SpamdScorer("127.0.0.1", own.port, timeout=5)
        assert asyncio.run(scorer.ping())
        daemons.stop(own)
        result = asyncio.run(scorer.score(HAM))
    assert not result.ok and result.reply.code == 451
