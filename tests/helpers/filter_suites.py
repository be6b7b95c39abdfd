"""Conformance suites for the filter interfaces, subclassed once per backend.

``VirusScannerSuite`` holds any ``async scan(bytes) -> VirusVerdict`` to
the corpus table; ``SpamScorerSuite`` holds any ``async score(bytes) ->
SpamScore`` to the level table.  The built-ins run them in the fast suite
(tests/test_filters_virus.py, tests/test_filters_spam.py), clamd and spamd
in the slow one (tests/test_filters_daemons.py): one table, every backend.
"""
from __future__ import annotations

import asyncio

import pytest

from mta.filters.levels import SpamLevel, SpamSettings, apply
from mta.filters.virus import Status
from helpers.filter_corpus import SPAM_CORPUS, VIRUS_CORPUS, plain

ON = SpamSettings(enabled=True)


def base_name(signature: str) -> str:
    """clamd marks names from an unsigned database (ours) ``.UNOFFICIAL``."""
    return signature.removesuffix(".UNOFFICIAL")


class VirusScannerSuite:
    """Subclass and provide a ``scanner`` fixture."""

    @pytest.mark.parametrize("name", sorted(VIRUS_CORPUS))
    def test_corpus(self, scanner, name):
        message, infected = VIRUS_CORPUS[name]
        verdict = asyncio.run(scanner.scan(message))
        assert verdict.status is (Status.INFECTED if infected else Status.CLEAN), verdict
        assert verdict.scanner == scanner.name
        if infected:
            assert [base_name(s) for s in verdict.signatures] == ["Eicar-Test-Signature"]
            assert verdict.reply is None and verdict.discard_reason.startswith("virus: ")
        else:
            assert verdict.signatures == () and verdict.reply is None

    def test_headers_only_and_empty_body(self, scanner):
        for message in (plain(b""), b"Subject: no body at all\r\n", b"\r\n"):
            assert asyncio.run(scanner.scan(message)).status is Status.CLEAN, message


class SpamScorerSuite:
    """Subclass and provide a ``scorer`` fixture."""

    @pytest.mark.parametrize("name", sorted(SPAM_CORPUS))
    def test_levels_and_actions(self, scorer, name):
        message, level = SPAM_CORPUS[name]
        result = asyncio.run(scorer.score(message))
        assert result.ok, result.error
        decided = ON.decide(result)
        assert decided.level.value == level, result
        expected = {SpamLevel.NONE: (message, "none"), SpamLevel.HIGH: (None, "deleted")}
        assert apply(decided, message) == expected[decided.level]

    def test_gtube_is_named(self, scorer):
        message, _ = SPAM_CORPUS["gtube"]
        result = asyncio.run(scorer.score(message))
        assert result.score >= 1000 and "GTUBE" in result.rule_names
