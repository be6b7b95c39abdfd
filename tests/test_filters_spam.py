"""The spam stage: built-in rules, levels, the actions, spamd's failures."""
from __future__ import annotations

import asyncio
import email

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mta.filters.levels import (LevelAction, SpamAction, SpamLevel, SpamSettings, Thresholds,
                                apply)
from mta.filters.replies import TEMPFAIL
from mta.filters.spam import RULES, BuiltinScorer, SpamScore
from mta.filters.spamd import SpamdScorer, parse_report
from helpers.filter_corpus import GTUBE_MAIL, HAM, RULE_SPAM, plain
from helpers.filter_daemons import free_port
from helpers.filter_suites import SpamScorerSuite

ON = SpamSettings(enabled=True)


def score(message: bytes) -> SpamScore:
    return asyncio.run(BuiltinScorer().score(message))


class TestBuiltinScorer(SpamScorerSuite):
    @pytest.fixture
    def scorer(self):
        return BuiltinScorer()


def test_gtube_scores_1000_and_ham_nothing():
    assert score(GTUBE_MAIL).score == 1000.0 and score(GTUBE_MAIL).rule_names == ("GTUBE",)
    assert score(HAM).score == 0.0 and score(HAM).rules == ()


def test_rule_spam_hits_the_documented_rules():
    result = score(RULE_SPAM)
    assert result.rule_names == ("DRUGS_ERECTILE", "LOTS_OF_MONEY", "SUBJ_ALL_CAPS",
                                 "INVALID_MSGID", "MIME_HTML_ONLY", "SUBJ_EXCLAIM")
    assert result.score == pytest.approx(12.5)
    assert ON.decide(result).level is SpamLevel.HIGH


@pytest.mark.parametrize("subject,body,msgid,rule", [
    (b"MEETING AGENDA FOR MONDAY", b"hi", b"<a@b>", "SUBJ_ALL_CAPS"),
    (b"hello", b"cheap V1AGRA here", b"<a@b>", "DRUGS_ERECTILE"),
    (b"=?utf-8?B?Q2lhbGlzIG9mZmVy?=", b"hi", b"<a@b>", "DRUGS_ERECTILE"),
    (b"wow!!!", b"hi", b"<a@b>", "SUBJ_EXCLAIM"),
    (b"hello", b"!" * 10, b"<a@b>", "BODY_EXCLAIM"),
    (b"hello", b"You have won $1,000,000", b"<a@b>", "LOTS_OF_MONEY"),
    (b"hello", b"hi", b"<no-at-sign>", "INVALID_MSGID"),
    (b"hello", b"hi", None, "MISSING_MID"),
])
def test_each_rule_hits_alone(subject, body, msgid, rule):
    assert score(plain(body, subject=subject, msgid=msgid)).rule_names == (rule,)


def test_rules_have_unique_names_and_positive_scores():
    names = [r.name for r in RULES]
    assert len(names) == len(set(names))
    assert all(r.score > 0 for r in RULES)


def test_text_attachments_are_not_the_message_text():
    message = (b"Subject: hi\r\nMessage-ID: <a@b>\r\nContent-Type: multipart/mixed; boundary=b"
               b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: "
               b"text/plain\r\nContent-Disposition: attachment; filename=log.txt\r\n\r\n"
               b"viagra viagra\r\n--b--\r\n")
    assert score(message).rules == ()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=1500))
def test_scorer_never_raises(data):
    assert score(data).ok


# -- levels ---------------------------------------------------------------

def test_thresholds_and_defaults():
    assert [ON.thresholds.level(s).value for s in (0, 2.9, 3, 4.9, 5, 9.9, 10, 1000)] == [
        "none", "none", "low", "low", "med", "med", "high", "high"]
    assert [ON.actions[lv] for lv in SpamLevel] == [
        SpamAction.NONE, SpamAction.HEADER, SpamAction.SUBJECT, SpamAction.DELETE]
    with pytest.raises(ValueError):
        Thresholds(low=6, med=5)


def test_spam_checking_off_by_default_changes_nothing():
    off = SpamSettings()
    decided = off.decide(score(GTUBE_MAIL))
    assert (decided.level, decided.action) == (SpamLevel.NONE, SpamAction.NONE)
    assert apply(decided, GTUBE_MAIL) == (GTUBE_MAIL, "none")


def test_failed_score_is_not_classified():
    failed = SpamScore.failed("spamd", "down")
    assert failed.reply == TEMPFAIL
    with pytest.raises(ValueError):
        ON.decide(failed)


def test_no_action_allowed_at_level_none():
    with pytest.raises(ValueError):
        LevelAction(SpamLevel.NONE, SpamAction.DELETE)


# -- actions ----------------------------------------------------------------

def subject_of(message: bytes) -> str:
    return email.message_from_bytes(message)["Subject"]


@pytest.mark.parametrize("level", [SpamLevel.LOW, SpamLevel.MED, SpamLevel.HIGH])
def test_subject_prefix(level):
    new, done = apply(LevelAction(level, SpamAction.SUBJECT), HAM)
    assert subject_of(new) == f"[SPAM: {level.value}] Lunch on Tuesday"
    assert done == f"subject prefix [SPAM: {level.value}] "
    head, body = HAM.split(b"\r\n\r\n", 1)
    assert new.split(b"\r\n\r\n", 1)[1] == body          # body byte for byte
    again, _ = apply(LevelAction(level, SpamAction.SUBJECT), new)
    assert again == new                                  # never prefixed twice


def test_seed_texts_exactly():
    low, _ = apply(LevelAction(SpamLevel.LOW, SpamAction.SUBJECT), HAM)
    med, _ = apply(LevelAction(SpamLevel.MED, SpamAction.SUBJECT), HAM)
    assert b"Subject: [SPAM: low] Lunch" in low and b"Subject: [SPAM: med] Lunch" in med


def test_subject_prefix_variants():
    lf = HAM.replace(b"\r\n", b"\n")
    new, _ = apply(LevelAction(SpamLevel.LOW, SpamAction.SUBJECT), lf)
    assert b"\r" not in new and subject_of(new).startswith("[SPAM: low] ")
    no_subject = b"From: a@b\r\n\r\nbody"
    new, _ = apply(LevelAction(SpamLevel.MED, SpamAction.SUBJECT), no_subject)
    assert subject_of(new) == "[SPAM: med]" and new.endswith(b"\r\n\r\nbody")
    encoded = b"SUBJECT: =?utf-8?B?SGVsbG8=?=\r\n\r\nx"
    new, _ = apply(LevelAction(SpamLevel.LOW, SpamAction.SUBJECT), encoded)
    decoded = str(email.header.make_header(email.header.decode_header(subject_of(new))))
    assert decoded == "[SPAM: low] Hello"
    tight = b"Subject:hi\r\n\r\nx"
    assert apply(LevelAction(SpamLevel.LOW, SpamAction.SUBJECT), tight)[0].startswith(
        b"Subject: [SPAM: low] hi")
    body_subject = b"From: a\r\n\r\nSubject: not a header\r\n"
    new, _ = apply(LevelAction(SpamLevel.LOW, SpamAction.SUBJECT), body_subject)
    assert new.endswith(b"\r\n\r\nSubject: not a header\r\n")


def test_hidden_header():
    new, done = apply(LevelAction(SpamLevel.LOW, SpamAction.HEADER, score=3.4), HAM)
    assert new == b"X-Spam-Level: low score=3.4\r\n" + HAM
    assert done == "header X-Spam-Level: low"
    assert subject_of(new) == "Lunch on Tuesday"


def test_delete_and_none():
    assert apply(LevelAction(SpamLevel.HIGH, SpamAction.DELETE), HAM) == (None, "deleted")
    assert apply(LevelAction(SpamLevel.MED, SpamAction.NONE), HAM) == (HAM, "none")


def test_actions_on_a_zero_byte_message():
    new, _ = apply(LevelAction(SpamLevel.LOW, SpamAction.HEADER), b"")
    assert new == b"X-Spam-Level: low\r\n\r\n"
    new, _ = apply(LevelAction(SpamLevel.LOW, SpamAction.SUBJECT), b"")
    assert new == b"Subject: [SPAM: low]\r\n\r\n"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=800), st.sampled_from(list(SpamLevel)[1:]),
       st.sampled_from(list(SpamAction)))
def test_apply_never_raises_and_keeps_the_body(data, level, action):
    new, done = apply(LevelAction(level, action), data)
    assert done
    if action is SpamAction.DELETE:
        assert new is None
    else:
        assert data in new or data.rstrip(b"\r\n") in new or data == b""


# -- spamd adapter: the report parser and failures ------------------------

REPORT = b"""Content analysis details:   (8.8 points, 5.0 required)

 pts rule name              description
---- ---------------------- --------------------------------------------------
-0.0 NO_RECEIVED            Informational: message has no Received headers
 2.8 DRUG_ED_CAPS           BODY: Mentions an E.D. drug
 1.0 MSGID_NOFQDN1          Message-ID with no domain name
                            continued description line
 2.6 INVALID_MSGID          Message-Id is not valid, according to RFC 2822
"""


def test_parse_report():
    hits = parse_report(REPORT)
    assert [(h.name, h.score) for h in hits] == [
        ("NO_RECEIVED", -0.0), ("DRUG_ED_CAPS", 2.8), ("MSGID_NOFQDN1", 1.0),
        ("INVALID_MSGID", 2.6)]
    assert parse_report(b"no table here") == ()


def test_spamd_down_is_a_failed_score():
    scorer = SpamdScorer("127.0.0.1", free_port(), timeout=5)
    result = asyncio.run(scorer.score(HAM))
    assert not result.ok and "unreachable" in result.error and result.reply == TEMPFAIL
    assert asyncio.run(scorer.ping()) is False


async def _against(handler, timeout: float) -> SpamScore:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        return await SpamdScorer("127.0.0.1", port, timeout=timeout).score(HAM)
    finally:
        server.close()
        await server.wait_closed()


def test_spamd_that_never_answers_times_out():
    async def silent(reader, writer):
        await asyncio.sleep(30)
    result = asyncio.run(_against(silent, timeout=0.5))
    assert not result.ok and "timed out" in result.error


@pytest.mark.parametrize("answer", [
    b"", b"garbage\r\n\r\n", b"SPAMD/1.1 76 Bad header line\r\n\r\n",
    b"SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\n\r\n",   # no Spam: header
])
def test_spamd_bad_answers_are_failed_scores(answer):
    async def answers(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()
    result = asyncio.run(_against(answers, timeout=5))
    assert not result.ok, result
