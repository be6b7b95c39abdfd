"""Event log IO: canonical JSONL, refusal of damaged logs, Parquet, SQLite."""
from __future__ import annotations

import json

import pytest

from mta import events as E
from mta.events.codec import encode
from sim.events import LinkDown, RunStarted
from sim.evidence.handlog import LogBuilder
from mta.events.sinks import RunLogSink
from sim.evidence.log import (
    LogError, SqliteSink, events_frame, load_events, read_jsonl,
    read_parquet, read_sqlite, write_jsonl, write_parquet)


def sample_log() -> list[E.Event]:
    """A log touching every field type: tuples, None, bool, dict, floats."""
    L = LogBuilder("io", seed=42)
    L.expect("retry-discipline", min_backoff=300, max_backoff="4000", lifetime="5d",
             hosts=["mx2.example"])
    L.link(0, "mx1.example", False)
    L.accept(1.25, "mx2.example", "mx2/m1", "t1", ["bob@example.org", "eve@example.org"],
             held=True)
    L.attempt(2, "mx2.example", "mx2/m1", "t1", ["bob@example.org"], "mx1.example", pref=10,
              outcome="timeout")
    L.defer(32.5, "mx2.example", "mx2/m1", "t1", "bob@example.org", 332.5)
    L.add(E.SmtpReply(t=40, host="mx2.example", conn="mx2.example/c9", client_ip="192.0.2.7",
                      command="MAIL", argument="FROM:<>", code=250, text="2.1.0 OK",
                      helo="h.example", mail_from=None))
    L.add(E.PolicyDecision(t=41, host="mx2.example", conn="mx2.example/c9", stage="dnsbl",
                           decision="fail-open", detail="zen.example", client_ip="192.0.2.7"))
    L.bounce(50, "mx2.example", "mx2/m1", "t1", "eve@example.org")
    L.add(E.Released(t=60, host="mx2.example", domain="example.org", trigger="etrn", count=1,
                     client_ip="192.0.2.9"))
    return L.end(1e6 + 0.1)


def test_jsonl_line_is_canonical(tmp_path):
    p = write_jsonl([LinkDown(t=0, host="mx1.example", link="mx1.example")], tmp_path / "e.jsonl")
    # Sorted keys, compact separators, and an int time written as a float,
    # so the same time always reads the same.
    assert p.read_bytes() == b'{"host":"mx1.example","kind":"link_down","link":"mx1.example","t":0.0}\n'


def test_jsonl_round_trip_is_byte_identical(tmp_path):
    events = sample_log()
    p1 = write_jsonl(events, tmp_path / "a.jsonl")
    back = read_jsonl(p1)
    assert back == events
    p2 = write_jsonl(back, tmp_path / "b.jsonl")
    assert p1.read_bytes() == p2.read_bytes()
    lines = p1.read_text().splitlines()
    assert len(lines) == len(events)
    assert all(json.loads(s) == json.loads(json.dumps(json.loads(s), sort_keys=True))
               for s in lines)


def test_truncated_log_is_refused_with_line_number(tmp_path):
    events = sample_log()
    p = write_jsonl(events, tmp_path / "events.jsonl")
    data = p.read_bytes()
    p.write_bytes(data[:-30])   # cut in the middle of the last line
    with pytest.raises(LogError) as exc:
        read_jsonl(p)
    msg = str(exc.value)
    assert str(p) in msg and f":{len(events)}:" in msg and "truncated" in msg


def test_malformed_line_is_refused_naming_it(tmp_path):
    events = sample_log()
    p = write_jsonl(events, tmp_path / "events.jsonl")
    lines = p.read_text().splitlines(keepends=True)
    lines[4] = lines[4][:20] + "\n"
    p.write_text("".join(lines))
    with pytest.raises(LogError, match=r"events\.jsonl:5: malformed JSON"):
        read_jsonl(p)


def test_invalid_event_is_refused_naming_it(tmp_path):
    p = tmp_path / "events.jsonl"
    good = encode(RunStarted(t=0, host="mxsim", scenario="x", seed=1))
    bad = json.dumps({"kind": "smtp_reply", "t": 1, "host": "h", "conn": "c", "client_ip": "i",
                      "command": "MAIL", "argument": "", "code": 999, "text": ""})
    unknown = json.dumps({"kind": "no_such_kind", "t": 1, "host": "h"})
    p.write_text(good + "\n" + bad + "\n")
    with pytest.raises(LogError, match=r":2: invalid event: .*bad reply code 999"):
        read_jsonl(p)
    p.write_text(good + "\n" + good + "\n" + unknown + "\n")
    with pytest.raises(LogError, match=r":3: invalid event: unknown event kind"):
        read_jsonl(p)
    p.write_text(good + "\n\n" + good + "\n")
    with pytest.raises(LogError, match=r":2: empty line"):
        read_jsonl(p)


def test_missing_file_is_a_log_error(tmp_path):
    with pytest.raises(LogError, match="cannot read"):
        read_jsonl(tmp_path / "nope.jsonl")


def test_parquet_round_trip_is_exact(tmp_path):
    events = sample_log()
    pq = write_parquet(events, tmp_path / "events.parquet")
    back = read_parquet(pq)
    assert back == events
    # ... down to the canonical bytes: None stays None, ints stay ints.
    assert [encode(e) for e in back] == [encode(e) for e in events]
    assert load_events(pq) == events


def test_parquet_is_readable_by_pandas(tmp_path):
    import pandas as pd
    events = sample_log()
    frame = pd.read_parquet(write_parquet(events, tmp_path / "e.parquet"))
    assert len(frame) == len(events)
    assert list(frame["kind"])[:2] == ["run_started", "guarantee_expected"]
    assert frame.loc[frame["kind"] == "deferred", "next_attempt"].iloc[0] == 332.5
    df = events_frame(events)
    assert list(df["seq"]) == list(range(len(events)))


def test_run_log_sink_writes_what_write_jsonl_writes(tmp_path):
    events = sample_log()
    sink = RunLogSink(tmp_path / "live.jsonl")
    for ev in events:
        sink.emit(ev)
    sink.close()
    write_jsonl(events, tmp_path / "batch.jsonl")
    assert (tmp_path / "live.jsonl").read_bytes() == (tmp_path / "batch.jsonl").read_bytes()


def test_run_log_sink_file_holds_every_line_up_to_the_last_flush(tmp_path):
    events = sample_log()
    path = tmp_path / "live.jsonl"
    sink = RunLogSink(path)
    for ev in events[:3]:
        sink.emit(ev)
    sink.flush()
    assert path.read_bytes() == b"".join(encode(e).encode() + b"\n" for e in events[:3])
    sink.flush()                      # nothing new: nothing written
    for ev in events[3:]:
        sink.emit(ev)
    sink.close()
    sink.emit(events[0])              # after the end: ignored
    assert path.read_bytes() == b"".join(encode(e).encode() + b"\n" for e in events)
    assert sink.events == events


def test_sqlite_sink_round_trip_and_append(tmp_path):
    events = sample_log()
    db = tmp_path / "events.sqlite"
    sink = SqliteSink(db, commit_every=3)
    for ev in events[:5]:
        sink.emit(ev)
    sink.close()
    sink = SqliteSink(db)          # reopened: continues the same log
    for ev in events[5:]:
        sink.emit(ev)
    # commit_every=1: visible to another connection without close()
    assert read_sqlite(db) == events
    sink.close()
    assert load_events(db) == events


def test_sqlite_missing_database(tmp_path):
    with pytest.raises(LogError):
        read_sqlite(tmp_path / "none.sqlite")


def test_load_events_from_run_dir(tmp_path):
    events = sample_log()
    write_jsonl(events, tmp_path / "events.jsonl")
    assert load_events(tmp_path) == events
