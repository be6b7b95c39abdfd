"""Quantities scenario authors write besides durations: sizes, bandwidths, rates.

Sizes read as ``30MB`` (decimal), ``4KiB`` (binary) or plain bytes;
bandwidths as ``56kbit`` or ``1Mbit`` (bits per second) or plain bytes per
second; rates as ``10/h`` or ``3/5m``, whose time is a duration in the one
grammar of :mod:`mta.units` (which scenarios use for every duration field).

Every parser raises :class:`ValueError` with a message that says what was
expected, so the loader can report it next to the key path.
"""
from __future__ import annotations

import math
import re

from mta.units import DURATION_UNITS, parse_duration

_NUMBER = r"\d+(?:\.\d+)?"


# --------------------------------------------------------------------------
# Sizes and bandwidths
# --------------------------------------------------------------------------

SIZE_UNITS: dict[str, int] = {
    "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9,
    "KIB": 2**10, "MIB": 2**20, "GIB": 2**30,
}
SIZE_HINT = "a size such as 30MB, 64KiB or a number of bytes"
_SIZE = re.compile(rf"^({_NUMBER})\s*([A-Za-z]*)$")


def parse_size(value: object) -> int:
    """Bytes in ``value``: ``30MB`` (10^6), ``4KiB`` (2^10) or a plain integer."""
    if isinstance(value, bool):
        raise ValueError(f"expected {SIZE_HINT}, got {value!r}")
    if isinstance(value, int):
        n = value
    elif isinstance(value, float) and value.is_integer():
        n = int(value)
    elif isinstance(value, str):
        m = _SIZE.match(value.strip())
        unit = m.group(2).upper() if m else ""
        if not m or (unit and unit not in SIZE_UNITS):
            raise ValueError(f"expected {SIZE_HINT}, got {value!r}")
        n = round(float(m.group(1)) * SIZE_UNITS.get(unit, 1))
    else:
        raise ValueError(f"expected {SIZE_HINT}, got {value!r}")
    if n < 0:
        raise ValueError(f"expected {SIZE_HINT} (not negative), got {value!r}")
    return n


BANDWIDTH_UNITS: dict[str, float] = {
    "bit": 1 / 8, "kbit": 1e3 / 8, "mbit": 1e6 / 8, "gbit": 1e9 / 8,
}
BANDWIDTH_HINT = "a bandwidth such as 56kbit, 2Mbit or a number of bytes per second"


def parse_bandwidth(value: object) -> float:
    """Bytes per second in ``value``: ``56kbit`` / ``2Mbit`` (bits per second,
    decimal prefixes, as line speeds are quoted) or a plain number of bytes/s."""
    if isinstance(value, bool):
        raise ValueError(f"expected {BANDWIDTH_HINT}, got {value!r}")
    if isinstance(value, (int, float)):
        rate = float(value)
    elif isinstance(value, str):
        m = _SIZE.match(value.strip())
        unit = m.group(2).lower() if m else ""
        if not m or unit not in BANDWIDTH_UNITS and unit:
            raise ValueError(f"expected {BANDWIDTH_HINT}, got {value!r}")
        rate = float(m.group(1)) * (BANDWIDTH_UNITS[unit] if unit else 1.0)
    else:
        raise ValueError(f"expected {BANDWIDTH_HINT}, got {value!r}")
    if not math.isfinite(rate) or rate <= 0:
        raise ValueError(f"expected {BANDWIDTH_HINT} (above zero), got {value!r}")
    return rate


# --------------------------------------------------------------------------
# Rates
# --------------------------------------------------------------------------

RATE_HINT = "a rate such as 10/h, 3/5m or 200/d"


def parse_rate(value: object) -> float:
    """Events per second in ``value``: ``COUNT/DURATION`` (``10/h``, ``1/90m``).

    A bare unit after the slash means one of it (``10/h`` = 10 per hour).
    A plain number is events per second.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected {RATE_HINT}, got {value!r}")
    if isinstance(value, (int, float)):
        rate = float(value)
    elif isinstance(value, str) and "/" in value:
        count_text, _, per_text = value.partition("/")
        per_text = per_text.strip()
        if per_text in DURATION_UNITS:
            per_text = "1" + per_text
        try:
            count = float(count_text.strip())
            per = parse_duration(per_text)
        except ValueError:
            raise ValueError(f"expected {RATE_HINT}, got {value!r}") from None
        if per == 0:
            raise ValueError(f"expected {RATE_HINT} (per a non-zero time), got {value!r}")
        rate = count / per
    else:
        raise ValueError(f"expected {RATE_HINT}, got {value!r}")
    if not math.isfinite(rate) or rate < 0:
        raise ValueError(f"expected {RATE_HINT} (not negative), got {value!r}")
    return rate
