"""Hostile clients at scale against ``mxsim serve`` on loopback (slow).

The short forms of ``benchmarks/hostile.py`` (same drivers,
:mod:`helpers.hostile` and the modules beside it): a real ``mxsim serve`` subprocess, a backup MX
relaying to an aiosmtpd sink, limits made small through the scenario
(``idle_timeout``, ``recipient_limit``), the server measured from outside
(``/proc/PID``).  Every test also requires that the server never logged a
ComponentError and is still running.
"""
from __future__ import annotations

import pytest

from helpers.hostile import CLEAN
from helpers.hostile_connections import run_idle_connections, run_slow_drip
from helpers.hostile_limits import run_big_data, run_many_rcpts
from helpers.hostile_streams import run_streams

pytestmark = pytest.mark.slow

MB = 1 << 20
POSTFIX_SIZE_LIMIT = 10_240_000      # the role's default (no size_limit in the scenario)


def _healthy(r: dict) -> None:
    assert r["alive"] and r["errors"] == [], r


def test_hostile_streams_leave_the_queue_intact(tmp_path):
    r = run_streams(tmp_path, examples=40)
    print(r)
    assert r["streams"] >= 1000 and r["acknowledged"] > 50, r
    assert r["final"] == CLEAN and r["alive_before_stop"] and r["exit"] == 0, r
    assert r["withheld"] == 0, r          # no reply the model waited for was withheld
    assert r["integrity"] == "ok", r
    assert (r["missing"], r["wrong_bytes"], r["unacknowledged"]) == ([], [], []), r
    assert r["fds_after"] <= r["fds_baseline"], r


def test_a_50_mb_line_and_200_mb_over_the_size_limit_are_read_in_bounded_memory(tmp_path):
    r = run_big_data(tmp_path, total=200 * MB, limit=None, under=POSTFIX_SIZE_LIMIT - 1000)
    print(r)
    _healthy(r)
    assert r["long_line"] == (500, "5.5.2 Error: command line too long"), r
    assert (r["mail"], r["data"]) == (250, 354)
    assert r["over_reply"] == (552, "5.3.4 Message size exceeds fixed limit"), r
    assert r["huge_delivered"] == {}, r
    assert r["hwm_growth"] < 50 * MB and r["rss_peak_growth"] < 50 * MB, r
    # the session goes on, and a message just under the limit arrives intact
    assert r["after"] == [250, 250, 250, 354, 250, 221], r
    assert r["under_size"] <= POSTFIX_SIZE_LIMIT
    assert r["under_delivered"] == {"under@example.net": 1} and r["under_intact"], r


def test_10000_rcpts_are_all_answered_and_the_accepted_delivered_once(tmp_path):
    r = run_many_rcpts(tmp_path, n=10_000, limit=9_000)
    print(r)
    _healthy(r)
    assert r["answered"] == 10_000 and r["accepted"] == 9_000 and r["too_many"] == 1_000, r
    assert r["first_452"] == 9_000, r
    assert (r["data"], r["queued"], r["quit"]) == (354, 250, 221), r
    assert r["delivered_once"] == 9_000 and r["delivered_twice_or_more"] == 0, r
    assert r["stray"] == [], r
    # Linear log: each reply used to carry every recipient so far (98 KB per RCPT).
    assert r["log_bytes_per_rcpt"] < 2_000, r


def test_1000_idle_connections_time_out_and_give_back_their_descriptors(tmp_path):
    r = run_idle_connections(tmp_path, n=1000, idle=5.0)
    print(r)
    _healthy(r)
    assert r["banners"] == 1000, r
    assert r["timed_out_421"] == 1000 and r["closed_after"] == 1000 and r["hung"] == 0, r
    assert r["early"] == 0 and r["other_bytes"] == [], r
    assert r["last_421_after_idle_s"] < 5.0, r
    assert r["fresh"] == CLEAN and r["fresh_before_first_421"], r
    assert r["fresh_delivered"] == {"clean@example.net": 1}, r
    assert r["fds_held"] >= r["fds_baseline"] + 1000, r
    assert r["fds_after"] <= r["fds_baseline"], r


def test_slow_drip_meets_the_per_command_and_per_line_deadline(tmp_path):
    idle, interval, lines = 2.0, 0.5, 12
    r = run_slow_drip(tmp_path, idle=idle, interval=interval, lines=lines, clean=10)
    print(r)
    _healthy(r)
    timeout = b"421 4.4.2 mx2.example.net Error: timeout exceeded\r\n"
    # Each byte comes well inside the idle timeout, the command never completes:
    # the deadline runs from the last complete command, so the session ends.
    sent, _, rest = r["command"]
    assert 0 < sent < len("MAIL FROM:<hostile@client.example>\r\n") and rest == timeout, r
    # The same inside DATA for one line; nothing of that message is kept.
    sent, _, rest = r["line"]
    assert 0 < sent < len("a body line dripped byte by byte\r\n") and rest == timeout, r
    assert r["line_delivered"] == {}, r
    # Whole lines trickled within the timeout: per block (RFC 5321 §4.5.3.2.6),
    # no total budget, so a body lasting several timeouts is accepted.
    reply, lasted, quit_ = r["body"]
    assert reply[0] == 250 and quit_ == 221 and lasted >= lines * interval > 2 * idle, r
    assert r["body_delivered"] == {"body@example.net": 1} and r["body_intact"], r
    # An unknown command is a command answered: the wait restarts there.
    assert r["junk"] == (502, 250, 221), r
    # Nobody starves: clean transactions complete while the trickle goes on.
    assert r["clean_ok"] == r["clean_tried"] == 10 and r["slow_alive_after_clean"][2], r
