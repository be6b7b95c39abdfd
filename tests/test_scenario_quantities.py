"""Sizes, bandwidths and rates as scenario authors write them."""
import pytest

from sim.scenario.quantities import parse_bandwidth, parse_rate, parse_size


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
    assert parse_rate("1/1w") == pytest.approx(1 / 604800)   # the duration grammar's units
    for bad in ["10", "10/x", "x/h", "1/0s", "-1/h", "1/4h2d"]:
        with pytest.raises(ValueError, match="expected a rate"):
            parse_rate(bad)
