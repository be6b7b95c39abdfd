"""``mxsim import postfix`` on a log written by a real Postfix (slow).

A private Postfix 3.7 instance (tests/helpers/postfix.py) relays to an
aiosmtpd next hop on loopback that accepts good@, refuses bad@ (550) and
keeps deferring later@ (451); the queue lifetime is 8 s, so later@ expires.
The imported log is judged, and its facts are checked against what the next
hop really received (the DSNs' bytes included), not against the importer.
Debian package: postfix.
"""
from __future__ import annotations

import email
import json
import time

import pytest
from aiosmtpd.controller import Controller

from helpers.postfix import PostfixInstance, free_port
from sim.cli import main

pytestmark = pytest.mark.slow


class NextHop:
    """Accepts good@ and the DSNs, refuses bad@, defers later@; keeps what it got."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address.startswith("bad"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if address.startswith("later"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 Ok: queued"


def test_a_real_postfix_log_is_judged(tmp_path, capsys):
    hop = NextHop()
    port = free_port()
    controller = Controller(hop, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings = {"minimal_backoff_time": "2s", "maximal_backoff_time": "4s",
                    "queue_run_delay": "2s", "maximal_queue_lifetime": "8s",
                    "bounce_queue_lifetime": "8s"}
        with PostfixInstance(free_port(), relayhost=f"[127.0.0.1]:{port}",
                             settings=settings) as pf:
            pf.send("ann@sender.example", ["good@dest.example", "bad@dest.example"],
                    b"Subject: one\r\nMessage-ID: <one@sender.example>\r\n\r\nhi\r\n")
            pf.send("ann@sender.example", ["later@dest.example"],
                    b"Subject: two\r\nMessage-ID: <two@sender.example>\r\n\r\nhi\r\n")
            pf.send("", ["bad2@dest.example"], b"Subject: three\r\n\r\nhi\r\n")
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                if "status=expired" in pf.maillog() and not pf.queue() and \
                        len(hop.received) >= 3:
                    break
                time.sleep(0.5)
            log = tmp_path / "maillog"
            log.write_text(pf.maillog())
    finally:
        controller.stop()
    assert "status=expired" in log.read_text(), log.read_text()[-3000:]

    out = tmp_path / "judged"
    code = main(["import", "postfix", str(log), "--out", str(out),
                 "--expect", "conservation", "--expect", "bounce-dsn",
                 "--expect", "retry-discipline:{default: {preset: postfix, settings: "
                 + json.dumps(settings) + "}}"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "0 not understood" in printed
    verdict = json.loads((out / "verdict.json").read_text())
    counts = verdict["counts"]
    # good@ went out; bad@ and bad2@ were refused, later@ expired: three bounces.
    assert (counts["accepted"], counts["relayed_out"], counts["bounced"], counts["lost"]) == \
        (4, 1, 3, 0)
    # The next hop got good@ and one DSN per message of ann@ (bad2@'s sender was <>).
    dsns = [email.message_from_bytes(body) for sender, rcpts, body in hop.received
            if rcpts == ["ann@sender.example"]]
    assert len(dsns) == counts["dsns"] == 2
    assert all(m.get_content_type() == "multipart/report" for m in dsns)
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    created = [e for e in events if e["kind"] == "dsn_created"]
    assert sorted(m["Message-ID"].strip("<>") for m in dsns) == sorted(e["trace"] for e in created)
    assert all(g["met"] for g in verdict["guarantees"])
    # Judged against Postfix's documented defaults, this instance's 2 s retries fail.
    assert main(["import", "postfix", str(log), "--out", str(tmp_path / "defaults"),
                 "--expect", "retry-discipline"]) == 1
