"""The one duration grammar (mta.units), and every entry point reading it alike."""
from __future__ import annotations

import json
import math
import re

import pytest
from hypothesis import given, strategies as st

from mta.retry.presets import preset
from mta.units import format_duration, parse_duration
from sim.cli import main
from sim.evidence.checks import REGISTRY, validate_params
from sim.evidence.checks.params import parse
from sim.evidence.handlog import LogBuilder
from sim.evidence.log import write_jsonl
from sim.scenario.loader import ScenarioError, load_text

@pytest.mark.parametrize("text, seconds", [
    ("90m", 5400), ("2d", 172800), ("36h", 129600), ("2d4h", 187200), ("1.5s", 1.5),
    ("250ms", 0.25), ("1w", 604800), ("1h30m", 5400), ("3600", 3600), (" 45s ", 45),
    (0, 0), (7.25, 7.25), ("0s", 0), ("1d2h3m4s", 93784),
])
def test_duration_forms(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", [
    "soon", "", "2x", "4h2d", "2h2h", "-5m", -1, "1.5", True, None, [], "d", "2 d", "nan",
    float("inf"), "1e3s",
])
def test_duration_rejects(bad):
    if bad == "1.5":  # a numeric string is plain seconds
        assert parse_duration(bad) == 1.5
        return
    with pytest.raises(ValueError, match="expected"):
        parse_duration(bad)


@given(st.integers(min_value=0, max_value=400 * 86400 * 1000))
def test_format_then_parse_is_exact_for_milliseconds(millis):
    seconds = millis / 1000
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, abs=1e-9)


@given(st.integers(min_value=0, max_value=60), st.integers(min_value=0, max_value=23),
       st.integers(min_value=0, max_value=59), st.integers(min_value=0, max_value=59))
def test_combined_units_add_up(d, h, m, s):
    text = "".join(f"{n}{u}" for n, u in ((d, "d"), (h, "h"), (m, "m"), (s, "s")) if n) or "0s"
    assert parse_duration(text) == d * 86400 + h * 3600 + m * 60 + s


@given(st.text(alphabet="0123456789.dhmsw -x", max_size=8))
def test_parse_never_crashes_and_never_negative(text):
    try:
        value = parse_duration(text)
    except ValueError:
        return
    assert value >= 0 and math.isfinite(value)


def test_format_examples():
    assert format_duration(187200) == "2d4h"
    assert format_duration(1.5) == "1.5s"
    assert format_duration(0.25) == "250ms"
    assert format_duration(0) == "0s"
    assert format_duration(90 * 60) == "1h30m"


def test_negative_text_is_named_as_such():
    for bad in ("-5", "-2h", "-1d4h", -0.5):
        with pytest.raises(ValueError, match=r"\(not negative\)"):
            parse_duration(bad)
    with pytest.raises(ValueError, match="largest first"):
        parse_duration("-4h2d")   # the syntax error is the news, not the sign


# -- every entry point -------------------------------------------------------------------
# A scenario field, a check parameter, a retry rule and ``mxsim replay --at``
# must read the same text as the same number of seconds, and refuse the same
# text.

def _scenario(value: object) -> float:
    text = f"name: units\nduration: {json.dumps(value)}\nhosts:\n" \
           "  - {name: a.example, address: 192.0.2.1}\n"
    return load_text(text).duration


def _check_param(value: object) -> float:
    params = {"exchangers": ["a.example"], "domain": "d.example", "within": value}
    problems = validate_params("etrn-flush", params)
    if problems:
        raise ValueError("; ".join(f"{key}: {msg}" for key, msg in problems))
    return parse(REGISTRY["etrn-flush"].params, params).within


def _retry_rule(value: object) -> float:
    return preset("sendmail", queuereturn=value).lifetime


ENTRY_POINTS = ["scenario field", "check param", "retry rule", "replay --at"]
SAME_SECONDS = [
    ("90m", 5400.0), ("2d4h", 187200.0), ("1w", 604800.0), ("1w1d", 691200.0),
    ("1h30m", 5400.0), ("1.5h", 5400.0), ("1.5s", 1.5), ("250ms", 0.25), ("3600", 3600.0),
    (7200, 7200.0),
]
REFUSED = ["4h2d", "2h2h", "1x", "2 d", "1M", "soon", "-5", "-2h", ""]


@pytest.fixture
def read(tmp_path, capsys):
    """``read(entry, value)``: the seconds ``entry`` makes of ``value``, or ValueError."""
    write_jsonl(LogBuilder("units").end(30 * 86400), tmp_path / "events.jsonl")   # past 1w1d

    def replay_at(value: object) -> float:
        status = main(["replay", str(tmp_path), f"--at={value}"])
        out, err = capsys.readouterr()
        if status != 0:
            raise ValueError(err)
        return float(re.match(r"state at t=(\S+) s", out).group(1))

    readers = {"scenario field": _scenario, "check param": _check_param,
               "retry rule": _retry_rule, "replay --at": replay_at}
    return lambda entry, value: readers[entry](value)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("value, seconds", SAME_SECONDS)
def test_every_entry_point_reads_the_same_seconds(read, entry, value, seconds):
    assert read(entry, value) == seconds == parse_duration(value)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("value", REFUSED)
def test_every_entry_point_refuses_the_same_text(read, entry, value):
    with pytest.raises((ValueError, ScenarioError)) as exc:
        read(entry, value)
    assert "expected" in str(exc.value)


def test_errors_keep_their_context():
    with pytest.raises(ScenarioError, match=r"<scenario>:2:11: duration: expected units "
                                            r"largest first"):
        _scenario("4h2d")
    with pytest.raises(ValueError, match=r"^within: expected a duration"):
        _check_param("1M")


def test_replay_refuses_a_negative_time_with_exit_2(tmp_path, capsys):
    write_jsonl(LogBuilder("units").end(30 * 86400), tmp_path / "events.jsonl")   # past 1w1d
    assert main(["replay", str(tmp_path), "--at", "-5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mxsim: --at: ") and "(not negative), got '-5'" in err
