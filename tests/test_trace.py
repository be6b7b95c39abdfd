"""Following one message across hosts: ``mxsim trace`` and the report's
timelines (swimlanes)."""
from __future__ import annotations

import pytest

from helpers.scenarios import SMALL, write
from sim.cli import main
from sim.evidence.model import Evidence
from sim.report.swimlane import KEEP_ROUNDS, rows_of, select, swimlane


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trace")
    assert main(["run", str(write(tmp, "small.yaml", SMALL)), "--out", str(tmp / "run")]) == 0
    return tmp / "run"


def test_a_message_that_went_through_the_secondary_shows_both_lanes(small_run, capsys):
    from sim.evidence.log import read_jsonl
    ev = Evidence(read_jsonl(small_run / "events.jsonl"))
    via_backup = next(lf for lf in ev.lifecycles if lf.host == "mx2.example.net")
    assert main(["trace", str(small_run), via_backup.trace]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "mx2.example.net" in line
                  and "mail.example.org" in line and not line.startswith("copies"))
    # lanes in the order the message passed them
    assert header.index("mail.example.org") < header.index("mx2.example.net") \
        < header.index("mx1.example.net")
    for words in ("submitted by carol@example.org", "accepted from 198.51.100.25",
                  "relayed to mx2.example.net", "delivered to mailbox"):
        assert words in out, words


def test_a_recipient_lists_its_messages_and_a_queue_id_finds_its_message(small_run, capsys):
    assert main(["trace", str(small_run), "alice@example.net"]) == 0
    out = capsys.readouterr().out
    assert out.count("message ") >= 3 and "more message" in out
    assert main(["trace", str(small_run), "mail.example.org/m1"]) == 0
    assert capsys.readouterr().out.startswith("message ")


def test_no_match_is_exit_2_with_a_suggestion(small_run, capsys):
    assert main(["trace", str(small_run), "alice@exmple.net"]) == 2
    assert "did you mean alice@example.net" in capsys.readouterr().err


def test_long_retry_histories_are_condensed_with_the_last_round_kept(log):
    log.submit(0, "s.example", "s.example/m1", "t1", ["bob@d.example"])
    for n in range(10):
        t = 60.0 + 600 * n
        log.attempt(t, "s.example", "s.example/m1", "t1", ["bob@d.example"], "mx.d.example", n=n + 1)
        log.defer(t + 30, "s.example", "s.example/m1", "t1", "bob@d.example", t + 630)
    log.bounce(6200, "s.example", "s.example/m1", "t1", "bob@d.example", code=451)
    ev = Evidence(log.end(7000))
    lives = select(ev, "bob@d.example")["t1"]
    _, rows = rows_of(ev, lives)
    tries = [r for r in rows if r.text.startswith("try ")]
    assert len(tries) == KEEP_ROUNDS + 1
    [skip] = [r for r in rows if r.text.startswith("...")]
    assert f"{10 - KEEP_ROUNDS - 1} more rounds deferred" in skip.text
    assert rows[-2].text.startswith("bounced 451") and rows[-1].text.startswith("failed DSN")
    assert "bounced 451" in swimlane(ev, lives)


def test_the_report_links_its_timelines(small_run):
    md = (small_run / "report.md").read_text()
    html = (small_run / "report.html").read_text()
    assert "## Timelines" in md and "mxsim trace REPORT_DIR RECIPIENT" in md
    assert 'id="timelines"' in html
