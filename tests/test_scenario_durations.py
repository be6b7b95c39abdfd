"""Durations, sizes, bandwidths and rates as scenario authors write them."""
import math

import pytest
from hypothesis import given, strategies as st

from sim.scenario.durations import (format_duration, parse_bandwidth, parse_duration,
                                    parse_rate, parse_size)


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


@pytest.mark.parametrize("text, n", [("30MB", 30_000_000), ("64KiB", 65536), ("1024", 1024),
                                     (512, 512), ("1.5MB", 1_500_000), ("2 kb", 2000)])
def test_sizes(text, n):
    assert parse_size(text) == n


@pytest.mark.parametrize("bad", ["30XB", "big", -1, True, 1.5])
def test_bad_sizes(bad):
    with pytest.raises(ValueError, match="expected a size"):
        parse_size(bad)


def test_bandwidth():
    assert parse_bandwidth("56kbit") == 7000
    assert parse_bandwidth("2Mbit") == 250_000
    assert parse_bandwidth(1000) == 1000
    with pytest.raises(ValueError, match="bandwidth"):
        parse_bandwidth("0")
    with pytest.raises(ValueError, match="bandwidth"):
        parse_bandwidth("fast")


def test_rates():
    assert parse_rate("10/h") == pytest.approx(10 / 3600)
    assert parse_rate("3/5m") == pytest.approx(3 / 300)
    assert parse_rate("200/d") == pytest.approx(200 / 86400)
    assert parse_rate(0.5) == 0.5
    for bad in ["10", "10/x", "x/h", "1/0s", "-1/h"]:
        with pytest.raises(ValueError, match="expected a rate"):
            parse_rate(bad)
