"""The planting helpers themselves: edits keep the log's order and never
touch the original; the two assertions refuse what they must refuse."""
from __future__ import annotations

import pytest

from mta import events as E
from sim.evidence.checks import run_check
from sim.evidence.handlog import LogBuilder
from helpers.planting import caught, first, held, insert, move, remove, rewrite

A, S, MX = "a@example.net", "sender.example", "mx.example.net"


def _log(dsn: bool = True) -> list[E.Event]:
    L = LogBuilder()
    L.submit(0, S, "s/m1", "t1", [A])
    L.attempt(10, S, "s/m1", "t1", [A], MX, pref=10)
    L.bounce(11, S, "s/m1", "t1", A, dsn=dsn)
    return L.end(20)


def test_edits_keep_order_and_leave_the_log_alone():
    log = _log()
    before = list(log)
    b = first(log, E.Bounced)
    assert rewrite(log, b, code=554)[log.index(b)].code == 554
    moved = move(log, b, 0.5)
    assert [e.t for e in moved] == sorted(e.t for e in moved)
    # after the run start, the submission and its Queued (all at 0), before the attempt
    assert moved.index(next(e for e in moved if isinstance(e, E.Bounced))) == 3
    assert len(remove(log, [b])) == len(log) - 1
    late = E.Released(t=15, host=MX, domain="example.net", trigger="etrn", count=0)
    assert insert(log, late)[[e.t for e in log].index(20.0)] is late
    assert log == before and log[log.index(b)] is b


def test_edits_refuse_events_not_in_the_log():
    stranger = first(_log(), E.Bounced)
    with pytest.raises(LookupError):
        remove(_log(), [stranger])
    with pytest.raises(LookupError):
        rewrite(_log(), stranger, code=554)
    with pytest.raises(ValueError):
        rewrite(_log(), first(_log(), E.Bounced), t=3.0)


def test_caught_refuses_a_pass_an_undecidable_result_and_a_wrong_name():
    good, bad = run_check("bounce-dsn", _log()), run_check("bounce-dsn", _log(dsn=False))
    held(good)
    with pytest.raises(AssertionError, match="not caught"):
        caught(good)
    with pytest.raises(AssertionError, match="undecidable"):
        caught(run_check("bounce-dsn", LogBuilder().end(5)))
    with pytest.raises(AssertionError, match="no counterexample names"):
        caught(bad, rcpt="someone-else@example.net")
    assert caught(bad, msg="s/m1", rcpt=A, host=S, event=first(_log(False), E.Bounced))
    with pytest.raises(AssertionError):
        held(bad)
