"""The maillog (mta/maillog.py): events as Postfix syslog lines, checked
line by line on a hand-built log, against full-logging's own reading, and
(slow) against pflogsumm, a Postfix log analyser from Debian."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mta import events as E
from mta.maillog import delay_text, dsn_code, maillog_lines, queue_id, syslog_time
from sim.actors.generate import SIM_EPOCH
from sim.evidence.checks import run_check
from sim.evidence.handlog import LogBuilder
from sim.pipeline import run_scenario
from sim.scenario.loader import load_scenario

LIBRARY = Path(__file__).resolve().parents[1] / "scenarios"
MX = "mx1.example.net"


def test_the_pieces_are_written_as_postfix_writes_them() -> None:
    assert syslog_time(0.0, SIM_EPOCH) == "Mar 16 00:00:00"
    assert syslog_time(86400 * 20 + 3661.9, SIM_EPOCH) == "Apr  5 01:01:01"
    assert [delay_text(x) for x in (0, 0.004, 0.25, 1.0, 1.26, 9.96, 24.4, 4000.6)] == \
        ["0", "0", "0.25", "1", "1.3", "10", "24", "4001"]
    assert queue_id("mx1.example.net/m26") == "000000001A"
    assert re.fullmatch(r"[0-9A-F]{10}", queue_id("no-counter"))
    assert dsn_code(250, "2.0.0 Ok") == "2.0.0" and dsn_code(451, "try later") == "4.0.0"


def hand_log():
    L = LogBuilder()
    L.accept(10, MX, f"{MX}/m1", "t1@x", ["a@example.net", "b@example.net"],
             client_ip="198.51.100.9", helo="c.example")
    L.attempt(11, MX, f"{MX}/m1", "t1@x", ["a@example.net"], "next.example.net")
    L.relay(12.5, MX, f"{MX}/m1", "t1@x", "a@example.net", "next.example.net")
    L.defer(12.5, MX, f"{MX}/m1", "t1@x", "b@example.net", 300, dest="next.example.net")
    L.bounce(400, MX, f"{MX}/m1", "t1@x", "b@example.net")
    c = f"{MX}/c9"
    L.add(E.ConnectionOpened(t=500, host=MX, conn=c, client_ip="198.18.0.1", port=25))
    L.reply(500, MX, c, "198.18.0.1", "CONNECT", "", 220, "hi")
    L.reply(501, MX, c, "198.18.0.1", "EHLO", "bot", 250, "hi", helo="bot")
    L.reply(502, MX, c, "198.18.0.1", "MAIL", "FROM:<s@spam.example>", 250, "2.1.0 Ok",
            helo="bot", mail_from="s@spam.example")
    L.reply(503, MX, c, "198.18.0.1", "RCPT", "TO:<x@far.example>", 554,
            "5.7.1 <x@far.example>: Relay access denied", helo="bot",
            mail_from="s@spam.example", stage="relay")
    L.add(E.ConnectionClosed(t=504, host=MX, conn=c, reason="eof"))
    return L.end(600)


def test_a_session_a_delivery_a_deferral_and_a_bounce() -> None:
    lines = list(maillog_lines(hand_log(), SIM_EPOCH))
    q = "0000000001"
    assert lines == [
        "Mar 16 00:00:10 mx1 postfix/smtpd[10001]: connect from unknown[198.51.100.9]",
        f"Mar 16 00:00:10 mx1 postfix/smtpd[10001]: {q}: client=unknown[198.51.100.9]",
        f"Mar 16 00:00:10 mx1 postfix/cleanup[2000]: {q}: message-id=<t1@x>",
        f"Mar 16 00:00:10 mx1 postfix/qmgr[1000]: {q}: from=<alice@sender.example>, "
        "size=1000, nrcpt=2 (queue active)",
        "Mar 16 00:00:10 mx1 postfix/smtpd[10001]: disconnect from unknown[198.51.100.9] "
        "ehlo=1 mail=1 rcpt=2 data=1 quit=1 commands=6",
        f"Mar 16 00:00:12 mx1 postfix/smtp[3000]: {q}: to=<a@example.net>, "
        "relay=next.example.net[198.51.100.1]:25, delay=2.5, delays=0/1/0/1.5, dsn=2.0.0, "
        "status=sent (250 2.0.0 Ok)",
        f"Mar 16 00:00:12 mx1 postfix/smtp[3000]: {q}: to=<b@example.net>, "
        "relay=next.example.net:25, delay=2.5, delays=0/2.5/0/0, dsn=4.4.1, "
        "status=deferred (451 4.4.1 no answer from host)",
        f"Mar 16 00:06:40 mx1 postfix/smtp[3000]: {q}: to=<b@example.net>, relay=none, "
        "delay=390, delays=0/390/0/0, dsn=5.1.1, status=bounced (550 5.1.1 user unknown)",
        f"Mar 16 00:06:40 mx1 postfix/qmgr[1000]: {q}: removed",
        f"Mar 16 00:06:40 mx1 postfix/bounce[5000]: {q}: sender non-delivery notification: "
        f"{queue_id(MX + '/m1.dsn')}",
        "Mar 16 00:08:20 mx1 postfix/smtpd[10009]: connect from unknown[198.18.0.1]",
        "Mar 16 00:08:23 mx1 postfix/smtpd[10009]: NOQUEUE: reject: RCPT from "
        "unknown[198.18.0.1]: 554 5.7.1 <x@far.example>: Relay access denied; "
        "from=<s@spam.example> to=<x@far.example> proto=ESMTP helo=<bot>",
        "Mar 16 00:08:24 mx1 postfix/smtpd[10009]: disconnect from unknown[198.18.0.1] "
        "ehlo=1 mail=1 rcpt=0/1 commands=2/3",
    ]


def test_full_logging_reads_the_hand_log_and_names_a_missing_line(tmp_path) -> None:
    events = hand_log()
    assert run_check("full-logging", events, {}).status == "pass"
    lines = list(maillog_lines(events, SIM_EPOCH))
    f = tmp_path / "maillog"
    f.write_text("\n".join(line for line in lines if "status=bounced" not in line))
    r = run_check("full-logging", events, {"maillog": str(f)})
    assert r.status == "fail"
    assert "no maillog line for bounced of <b@example.net>" in r.counterexamples[0]["why"]
    r = run_check("full-logging", events, {"maillog": str(tmp_path / "absent")})
    assert not r.decided and "cannot read" in r.detail


@pytest.mark.slow
def test_pflogsumm_counts_the_run_as_the_verdict_does(tmp_path) -> None:
    """pflogsumm (apt-get install -y pflogsumm) reads the maillog of the
    authenticated relay's library run and finds what the events say."""
    tool = shutil.which("pflogsumm")
    assert tool, "pflogsumm is not installed: apt-get install -y pflogsumm"
    res = run_scenario(load_scenario(LIBRARY / "auth-relay-limits.yaml"), out=tmp_path)
    text = subprocess.run([tool, str(tmp_path / "maillog")], capture_output=True, text=True,
                          check=True).stdout

    def total(what: str) -> int:
        m = re.search(rf"^\s+(\d+)\s+{what}\b", text, re.M)
        assert m, f"no '{what}' in pflogsumm's output:\n{text[:2000]}"
        return int(m.group(1))

    events = res.events
    accepted = [e for e in events if isinstance(e, E.MessageAccepted)]
    delivered = [e for e in events if isinstance(e, (E.Relayed, E.DeliveredToMailbox))]
    refused = [e for e in events if isinstance(e, E.SmtpReply) and e.code >= 400 and e.stage
               and e.command in ("CONNECT", "MAIL", "RCPT", "DATA_END")]
    assert total("received") == len(accepted)
    assert total("delivered") == len(delivered)
    assert total("rejected") == len(refused) > 1000       # 452s to the list abuser too
    assert total("bounced") == 0 and total("deferred") == 0


def test_the_maillog_is_a_stream_read_as_far_as_it_is_written() -> None:
    # A week's maillog is never held whole: the first line comes after the
    # events it needs, not after the whole log.
    log = hand_log()
    full = list(maillog_lines(log, SIM_EPOCH))
    pulled = []

    def events():
        for e in log:
            pulled.append(e)
            yield e

    lines = maillog_lines(events(), SIM_EPOCH)
    first = next(lines)
    assert first == full[0]
    assert len(pulled) < len(log) // 2
    assert [first, *lines] == full


def test_a_formatter_is_freed_without_the_cycle_collector() -> None:
    # Its state (every message's arrival) must go when the maillog is done,
    # also while judging has the cycle collector paused.
    import gc
    import weakref

    from mta.maillog import MaillogFormatter
    gc.disable()
    try:
        f = MaillogFormatter(SIM_EPOCH)
        assert [line for e in hand_log() for line in f.lines(e)] == \
            list(maillog_lines(hand_log(), SIM_EPOCH))
        gone = weakref.ref(f)
        del f
        assert gone() is None
    finally:
        gc.enable()
