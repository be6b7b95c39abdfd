"""``mxsim import postfix``: Postfix log lines into events, judged like a run.

The first excerpt is verbatim output of a real Postfix 3.7 (maillog_file):
two messages from ann@, one with a recipient the next hop refuses (550)
and one it keeps deferring (451) until the queue lifetime (12 s here)
expires, plus a null-sender message that bounces.  The others are written
by hand in the formats Postfix documents.
"""
from __future__ import annotations

import gzip
import json

import pytest

from mta import events as E
from sim.cli import main
from sim.evidence.model import Evidence
from sim.evidence.verdict import build_verdict
from sim.importers.postfix import NotPostfix, import_logs
from sim.importers.postfix_lines import IGNORED, Delivery, classify, reply_code, relay_address

REAL = """\
Dec 01 11:18:42 pf postfix/postfix-script[9725]: starting the Postfix mail system
Dec 01 11:18:42 pf postfix/master[9727]: daemon started -- version 3.7.11, configuration /tmp/x/conf
Dec 01 11:18:42 pf postfix/smtpd[9731]: connect from localhost[127.0.0.1]
Dec 01 11:18:42 pf postfix/smtpd[9731]: 9B7B522A0C7: client=localhost[127.0.0.1]
Dec 01 11:18:42 pf postfix/cleanup[9735]: 9B7B522A0C7: message-id=<m1@sender.example>
Dec 01 11:18:42 pf postfix/qmgr[9729]: 9B7B522A0C7: from=<ann@sender.example>, size=276, nrcpt=2 (queue active)
Dec 01 11:18:42 pf postfix/smtpd[9731]: disconnect from localhost[127.0.0.1] ehlo=1 mail=1 rcpt=2 data=1 quit=1 commands=6
Dec 01 11:18:42 pf postfix/smtpd[9731]: 9C1E922A0C8: client=localhost[127.0.0.1]
Dec 01 11:18:42 pf postfix/cleanup[9735]: 9C1E922A0C8: message-id=<m2@sender.example>
Dec 01 11:18:42 pf postfix/qmgr[9729]: 9C1E922A0C8: from=<ann@sender.example>, size=301, nrcpt=1 (queue active)
Dec 01 11:18:42 pf postfix/smtpd[9733]: 9DE3E22A0CB: client=localhost[127.0.0.1]
Dec 01 11:18:42 pf postfix/cleanup[9735]: 9DE3E22A0CB: message-id=<20261201111842.9DE3E22A0CB@pf.mxsim.test>
Dec 01 11:18:42 pf postfix/qmgr[9729]: 9DE3E22A0CB: from=<>, size=318, nrcpt=1 (queue active)
Dec 01 11:18:42 pf postfix/smtp[9736]: 9B7B522A0C7: to=<bad@dest.example>, relay=127.0.0.1[127.0.0.1]:58139, delay=0.02, delays=0.01/0.01/0/0.01, dsn=5.1.1, status=bounced (host 127.0.0.1[127.0.0.1] said: 550 5.1.1 <bad@dest.example>: Recipient address rejected: User unknown (in reply to RCPT TO command))
Dec 01 11:18:42 pf postfix/smtp[9736]: 9B7B522A0C7: to=<good@dest.example>, relay=127.0.0.1[127.0.0.1]:58139, delay=0.02, delays=0.01/0.01/0/0.01, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as X1)
Dec 01 11:18:42 pf postfix/cleanup[9735]: A0D1022A0CE: message-id=<20261201111842.A0D1022A0CE@pf.mxsim.test>
Dec 01 11:18:42 pf postfix/qmgr[9729]: A0D1022A0CE: from=<>, size=2210, nrcpt=1 (queue active)
Dec 01 11:18:42 pf postfix/bounce[9738]: 9B7B522A0C7: sender non-delivery notification: A0D1022A0CE
Dec 01 11:18:42 pf postfix/qmgr[9729]: 9B7B522A0C7: removed
Dec 01 11:18:42 pf postfix/smtp[9737]: 9C1E922A0C8: to=<later@dest.example>, relay=127.0.0.1[127.0.0.1]:58139, delay=0.03, delays=0.01/0.01/0/0.01, dsn=4.3.0, status=deferred (host 127.0.0.1[127.0.0.1] said: 451 4.3.0 try again later (in reply to RCPT TO command))
Dec 01 11:18:42 pf postfix/smtp[9736]: 9DE3E22A0CB: to=<bad2@dest.example>, relay=127.0.0.1[127.0.0.1]:58139, delay=0.02, delays=0/0.01/0.01/0, dsn=5.1.1, status=bounced (host 127.0.0.1[127.0.0.1] said: 550 5.1.1 <bad2@dest.example>: Recipient address rejected: User unknown (in reply to RCPT TO command))
Dec 01 11:18:42 pf postfix/smtp[9737]: A0D1022A0CE: to=<ann@sender.example>, relay=127.0.0.1[127.0.0.1]:58139, delay=0.01, delays=0/0/0/0, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as X1)
Dec 01 11:18:42 pf postfix/qmgr[9729]: 9DE3E22A0CB: removed
Dec 01 11:18:42 pf postfix/qmgr[9729]: A0D1022A0CE: removed
Dec 01 11:18:44 pf postfix/qmgr[9729]: 9C1E922A0C8: from=<ann@sender.example>, size=301, nrcpt=1 (queue active)
Dec 01 11:18:44 pf postfix/smtp[9736]: 9C1E922A0C8: to=<later@dest.example>, relay=127.0.0.1[127.0.0.1]:58139, delay=2, delays=2/0/0/0.01, dsn=4.3.0, status=deferred (host 127.0.0.1[127.0.0.1] said: 451 4.3.0 try again later (in reply to RCPT TO command))
Dec 01 11:18:50 pf postfix/qmgr[9729]: 9C1E922A0C8: from=<ann@sender.example>, size=301, nrcpt=1 (queue active)
Dec 01 11:18:50 pf postfix/smtp[9739]: 9C1E922A0C8: to=<later@dest.example>, relay=127.0.0.1[127.0.0.1]:58139, delay=8.1, delays=8.1/0/0/0, dsn=4.3.0, status=deferred (host 127.0.0.1[127.0.0.1] said: 451 4.3.0 try again later (in reply to RCPT TO command))
Dec 01 11:18:54 pf postfix/qmgr[9729]: 9C1E922A0C8: from=<ann@sender.example>, status=expired, returned to sender
Dec 01 11:18:54 pf postfix/cleanup[9735]: AC19C22A0D9: message-id=<20261201111854.AC19C22A0D9@pf.mxsim.test>
Dec 01 11:18:54 pf postfix/bounce[9740]: 9C1E922A0C8: sender non-delivery notification: AC19C22A0D9
Dec 01 11:18:54 pf postfix/qmgr[9729]: AC19C22A0D9: from=<>, size=2141, nrcpt=1 (queue active)
Dec 01 11:18:54 pf postfix/qmgr[9729]: 9C1E922A0C8: removed
Dec 01 11:18:54 pf postfix/smtp[9737]: AC19C22A0D9: to=<ann@sender.example>, relay=127.0.0.1[127.0.0.1]:58139, delay=0, delays=0/0/0/0, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as X1)
Dec 01 11:18:54 pf postfix/qmgr[9729]: AC19C22A0D9: removed
"""


def judged(text: str, expect=(("conservation", "holds", {}), ("bounce-dsn", "holds", {})),
           year: int = 2026):
    imported = import_logs([("maillog", text.splitlines(keepends=True))], year, "pf")
    return imported, build_verdict(Evidence(imported.log(list(expect))))


def of(events, cls):
    return [e for e in events if isinstance(e, cls)]


def test_a_real_log_becomes_the_events_the_judge_reads():
    imported, verdict = judged(REAL)
    ev = imported.events
    assert imported.unknown == [] and imported.used + imported.ignored == imported.lines
    accepted = of(ev, E.MessageAccepted)
    assert [(a.msg, a.rcpts) for a in accepted] == [
        ("9B7B522A0C7", ("bad@dest.example", "good@dest.example")),
        ("9C1E922A0C8", ("later@dest.example",)), ("9DE3E22A0CB", ("bad2@dest.example",))]
    assert accepted[0].trace == "m1@sender.example" and accepted[0].client_ip == "127.0.0.1"
    assert [(s.msg, s.origin) for s in of(ev, E.MessageSubmitted)] == [
        ("A0D1022A0CE", "dsn"), ("AC19C22A0D9", "dsn")]
    relayed = of(ev, E.Relayed)
    assert [(r.msg, r.rcpt, r.dest_ip) for r in relayed][0] == \
        ("9B7B522A0C7", "good@dest.example", "127.0.0.1")
    # Deferred three times, then expired: a give-up bounce with the last reply's code.
    deferred = of(ev, E.Deferred)
    assert [d.t for d in deferred] == [0.0, 2.0, 8.0] and {d.code for d in deferred} == {451}
    assert [d.next_attempt for d in deferred[:2]] == [2.0, 8.0]
    bounces = {b.rcpt: b for b in of(ev, E.Bounced)}
    assert bounces["later@dest.example"].reason == "expired"
    assert bounces["later@dest.example"].code == 451 and bounces["later@dest.example"].t == 12
    assert bounces["bad@dest.example"].reason == "rejected"
    assert bounces["bad@dest.example"].dsn_trace == "20261201111842.A0D1022A0CE@pf.mxsim.test"
    assert bounces["bad2@dest.example"].dsn_trace == ""        # <> sender: no DSN
    dsns = of(ev, E.DsnCreated)
    assert [(d.about_trace, d.to, d.rcpts, d.action) for d in dsns] == [
        ("m1@sender.example", "ann@sender.example", ("bad@dest.example",), "failed"),
        ("m2@sender.example", "ann@sender.example", ("later@dest.example",), "failed")]
    attempts = of(ev, E.AttemptStarted)
    assert [a.attempt for a in attempts if a.msg == "9C1E922A0C8"] == [1, 2, 3]
    assert [e.t for e in ev] == sorted(e.t for e in ev)
    assert verdict.counts.to_dict() == {"accepted": 4, "delivered": 0, "bounced": 3,
                                        "discarded": 0, "queued": 0, "relayed_out": 1,
                                        "lost": 0, "duplicates": 0, "dsns": 2}
    assert [(g.id, g.status, g.decided) for g in verdict.guarantees] == [
        ("conservation", "pass", True), ("bounce-dsn", "pass", True)]


def test_retry_discipline_is_judged_against_the_bounds_given():
    # This instance's main.cf: 2 s and 4 s backoff, a 2 s queue scan, 12 s lifetimes.
    loose = {"default": {"preset": "postfix", "settings": {
        "minimal_backoff_time": 2, "maximal_backoff_time": 4, "queue_run_delay": 2,
        "maximal_queue_lifetime": 12, "bounce_queue_lifetime": 12}}}
    _, ok = judged(REAL, [("retry-discipline", "holds", loose)])
    assert ok.guarantees[0].status == "pass"
    # Postfix's defaults (300 s minimal backoff, 5 d): this instance retried far sooner.
    _, bad = judged(REAL, [("retry-discipline", "holds", {"default": {"preset": "postfix"}})])
    g = bad.guarantees[0]
    assert g.status == "fail" and g.decided
    assert len(g.counterexamples) >= 2


def test_a_message_removed_without_a_fate_is_lost():
    text = """\
Dec  1 10:00:00 mx postfix/smtpd[1]: AAAA1: client=c.example[192.0.2.9]
Dec  1 10:00:00 mx postfix/cleanup[2]: AAAA1: message-id=<x@c.example>
Dec  1 10:00:01 mx postfix/qmgr[3]: AAAA1: from=<s@c.example>, size=900, nrcpt=2 (queue active)
Dec  1 10:00:02 mx postfix/local[4]: AAAA1: to=<u@mx.example>, relay=local, delay=1, delays=1/0/0/0, dsn=2.0.0, status=sent (delivered to mailbox)
Dec  1 10:00:02 mx postfix/smtp[5]: AAAA1: to=<v@far.example>, relay=none, delay=1, delays=1/0/0/0, dsn=4.4.1, status=deferred (connect to far.example[198.51.100.1]:25: Connection refused)
Dec  1 10:05:00 mx postfix/qmgr[3]: AAAA1: removed
"""
    imported, verdict = judged(text)
    assert of(imported.events, E.DeliveredToMailbox)[0].rcpt == "u@mx.example"
    assert of(imported.events, E.Deferred)[0].code == 450          # from dsn=4.4.1
    assert verdict.counts.lost == 1 and verdict.counts.delivered == 1
    assert verdict.guarantees[0].status == "fail"
    assert "AAAA1: removed from the queue with no fate for v@far.example" in imported.notes[0]
    # The same deletion by the administrator is a named decision, not silent loss.
    deleted = text.replace("mx postfix/qmgr[3]: AAAA1: removed",
                           "mx postfix/postsuper[9]: AAAA1: removed")
    imported, verdict = judged(deleted)
    assert of(imported.events, E.Discarded)[0].policy == "postsuper"
    assert verdict.counts.discarded == 1 and verdict.guarantees[0].status == "pass"


def test_discard_transport_probes_and_per_recipient_expiry():
    text = """\
Dec  1 10:00:00 mx postfix/smtpd[1]: CCCC1: client=c[192.0.2.9]
Dec  1 10:00:01 mx postfix/qmgr[3]: CCCC1: from=<s@c.example>, size=9, nrcpt=2 (queue active)
Dec  1 10:00:02 mx postfix/discard[6]: CCCC1: to=<spam@mx.example>, relay=none, delay=1, delays=1/0/0/0, dsn=2.0.0, status=sent (spamtrap)
Dec  1 10:00:02 mx postfix/smtp[5]: CCCC1: to=<v@far.example>, relay=none, delay=9, delays=9/0/0/0, dsn=4.4.1, status=expired, returned to sender (connect to far.example: timed out)
Dec  1 10:00:03 mx postfix/cleanup[2]: DDDD1: message-id=<20261201100003.DDDD1@mx.example>
Dec  1 10:00:03 mx postfix/qmgr[3]: DDDD1: from=<double-bounce@mx.example>, size=200, nrcpt=1 (queue active)
Dec  1 10:00:04 mx postfix/smtp[5]: DDDD1: to=<who@far.example>, relay=far.example[198.51.100.1]:25, delay=1, delays=0/0/0.5/0.5, dsn=2.1.5, status=deliverable (250 2.1.5 Ok)
Dec  1 10:00:05 mx postfix/qmgr[3]: DDDD1: removed
"""
    imported, verdict = judged(text)
    assert of(imported.events, E.Discarded)[0].policy == "discard transport"
    assert of(imported.events, E.Bounced)[0].reason == "expired"
    assert [a.msg for a in of(imported.events, E.MessageAccepted)] == ["CCCC1"]
    assert not of(imported.events, E.MessageSubmitted)              # the probe is not mail
    assert "1 address verification probe" in imported.notes[0]
    # Expired, and no notification in the log: a bounce without its DSN is loss.
    assert verdict.counts.discarded == 1 and verdict.counts.lost == 1
    with_dsn = text + (
        "Dec  1 10:00:06 mx postfix/cleanup[2]: EEEE1: message-id=<e@mx.example>\n"
        "Dec  1 10:00:06 mx postfix/bounce[7]: CCCC1: sender non-delivery notification: EEEE1\n")
    _, verdict = judged(with_dsn)
    assert verdict.counts.bounced == 1 and verdict.counts.lost == 0
    assert [g.status for g in verdict.guarantees] == ["pass", "pass"]


def test_years_roll_over_and_rfc3339_stamps_are_read():
    text = """\
Dec 31 23:59:59 mx postfix/smtpd[1]: BBBB1: client=c[192.0.2.9]
Jan  1 00:00:01 mx postfix/qmgr[3]: BBBB1: from=<s@c.example>, size=9, nrcpt=1 (queue active)
2026-01-01T00:00:03.500000+00:00 mx postfix/smtp[5]: BBBB1: to=<v@far.example>, relay=far.example[198.51.100.1]:25, delay=3, delays=1/0/1/0.5, dsn=2.0.0, status=sent (250 ok)
"""
    imported, _ = judged(text, year=2025)
    assert imported.end - imported.start == 4.5
    assert [round(e.t, 3) for e in of(imported.events, E.AttemptStarted)] == [3.0]
    assert of(imported.events, E.MessageAccepted)[0].t == 2.0


def test_lines_not_understood_are_counted_and_listed_never_fatal():
    text = REAL + ("Dec 01 11:19:00 pf dovecot[77]: imap-login: Login: user=<ann>\n"
                   "this is not syslog at all\n"
                   "Dec 01 11:19:01 pf postfix/smtp[9736]: 9C1E922A0C8: something new\n")
    imported, verdict = judged(text)
    assert [n for _, n, _ in imported.unknown] == [36, 37, 38]
    assert "something new" in imported.unknown[2][2]
    assert verdict.guarantees[0].status == "pass"


def test_a_file_without_postfix_lines_is_refused():
    with pytest.raises(NotPostfix, match="not a Postfix log"):
        import_logs([("notes.txt", ["hello\n", "Dec  1 10:00:00 h sshd[1]: hi\n"])], 2026, "x")


def test_line_grammar():
    d = classify("ABCDE12: to=<a@b>, orig_to=<a>, relay=mx[192.0.2.1]:25, conn_use=2, "
                 "delay=1.2, delays=0.1/0/0.5/0.6, dsn=2.0.0, status=sent (250 2.0.0 Ok)")
    assert isinstance(d, Delivery) and d.delays == (0.1, 0.0, 0.5, 0.6) and d.rcpt == "a@b"
    assert classify("connect from x[192.0.2.1]") == IGNORED
    assert classify("NOQUEUE: reject: RCPT from x[1.2.3.4]: 554 5.7.1 ...") == IGNORED
    assert classify("ABCDE12: frobnicated") is None
    assert reply_code("host mx said: 552 5.3.4 too big (in reply to end of DATA)", "5.3.4") == 552
    assert reply_code("connect to mx: Connection timed out", "4.4.1") == 450
    assert relay_address("mx.example[192.0.2.1]:25") == ("mx.example", "192.0.2.1")
    assert relay_address("none") == ("none", "")


def test_the_command_writes_a_run_folder(tmp_path, capsys):
    log = tmp_path / "mail.log.1.gz"
    with gzip.open(log, "wt") as f:
        f.write(REAL + "garbage line\n")
    out = tmp_path / "out"
    code = main(["import", "postfix", str(log), "--out", str(out), "--year", "2026",
                 "--expect", "conservation", "--expect", "bounce-dsn",
                 "--expect", "retry-discipline:{default: {preset: postfix, settings: "
                             "{minimal_backoff_time: 2s, maximal_backoff_time: 4s, "
                             "queue_run_delay: 2s, maximal_queue_lifetime: 12s}}}"])
    assert code == 0
    printed = capsys.readouterr()
    assert "1 not understood" in printed.out and "garbage line" in printed.err
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["scenario"] == "postfix-mail.log.1.gz" and verdict["ok"]
    assert (out / "unknown-lines.txt").read_text() == f"{log}:36: garbage line\n"
    for name in ("events.jsonl", "report.md", "report.html"):
        assert (out / name).stat().st_size > 0
    # The report rebuilt from the log alone is the same (as for a run).
    before = (out / "report.md").read_bytes()
    assert main(["report", str(out)]) == 0
    assert (out / "report.md").read_bytes() == before
    # Default expectations: retry-discipline against Postfix's defaults, not met here.
    assert main(["import", "postfix", str(log), "--out", str(tmp_path / "o2")]) == 1


@pytest.mark.parametrize("argv, message", [
    (["--expect", "nope"], "not a guarantee ID"),
    (["--expect", "retry-discipline:{defualt: {preset: postfix}}"], "did you mean 'default'"),
    (["--expect", "conservation:[1]"], "expected parameters as a mapping"),
])
def test_bad_expectations_exit_2(tmp_path, capsys, argv, message):
    log = tmp_path / "maillog"
    log.write_text(REAL)
    assert main(["import", "postfix", str(log), "--out", str(tmp_path / "o"), *argv]) == 2
    assert message in capsys.readouterr().err


def test_missing_and_foreign_files_exit_2(tmp_path, capsys):
    assert main(["import", "postfix", str(tmp_path / "none"), "--out", str(tmp_path)]) == 2
    assert "no such file" in capsys.readouterr().err
    other = tmp_path / "auth.log"
    other.write_text("Dec  1 10:00:00 h sshd[1]: Accepted publickey for root\n")
    assert main(["import", "postfix", str(other), "--out", str(tmp_path / "o")]) == 2
    assert "not a Postfix log" in capsys.readouterr().err
