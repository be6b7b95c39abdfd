"""Human-friendly quantities in scenario files: durations, sizes, rates.

Scenario authors write ``90m``, ``2d``, ``36h``, ``2d4h`` or ``1.5s``; a plain
number means seconds.  Sizes read as ``30MB`` (decimal), ``4KiB`` (binary) or
plain bytes; bandwidths as ``56kbit`` or ``1Mbit`` (bits per second) or plain
bytes per second; rates as ``10/h`` or ``3/5m``.

Every parser raises :class:`ValueError` with a message that says what was
expected, so the loader can report it next to the key path.
"""
from __future__ import annotations

import math
import re

# Seconds per duration unit, largest first: the order units must appear in.
DURATION_UNITS: dict[str, float] = {
    "w": 7 * 86400.0,
    "d": 86400.0,
    "h": 3600.0,
    "m": 60.0,
    "s": 1.0,
    "ms": 0.001,
}

_NUMBER = r"\d+(?:\.\d+)?"
_PART = re.compile(rf"({_NUMBER})(ms|w|d|h|m|s)")
_DURATION = re.compile(rf"^(?:{_NUMBER}(?:ms|w|d|h|m|s))+$")
DURATION_PATTERN = _DURATION.pattern

DURATION_HINT = "a duration such as 90m, 2d, 36h, 2d4h, 1.5s or a number of seconds"


def parse_duration(value: object) -> float:
    """Seconds in ``value``: a non-negative number, or text like ``2d4h``.

    Units (w, d, h, m, s, ms) may be combined, largest first, each at most
    once: ``2d4h`` is 187200 s, ``4h2d`` is an error (probably a typo).
    """
    if isinstance(value, bool):
        raise ValueError(f"expected {DURATION_HINT}, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            seconds = _parse_units(text, value)
    else:
        raise ValueError(f"expected {DURATION_HINT}, got {value!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"expected {DURATION_HINT} (not negative), got {value!r}")
    return seconds


def _parse_units(text: str, original: object) -> float:
    if not _DURATION.match(text):
        raise ValueError(f"expected {DURATION_HINT}, got {original!r}")
    order = list(DURATION_UNITS)
    last = -1
    total = 0.0
    for number, unit in _PART.findall(text):
        rank = order.index(unit)
        if rank <= last:
            raise ValueError(
                f"expected units largest first and each once (like 2d4h), got {original!r}")
        last = rank
        total += float(number) * DURATION_UNITS[unit]
    return total


def format_duration(seconds: float) -> str:
    """The shortest exact text for ``seconds``: 187200 -> ``2d4h``, 1.5 -> ``1.5s``.

    ``parse_duration(format_duration(x)) == x`` for any whole number of
    milliseconds.
    """
    if seconds < 0 or not math.isfinite(seconds):
        raise ValueError(f"cannot format {seconds!r} as a duration")
    millis = round(seconds * 1000)
    if millis == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000)):
        n, millis = divmod(millis, size)
        if n:
            parts.append(f"{n}{unit}")
    if millis:
        if millis % 1000 == 0:
            parts.append(f"{millis // 1000}s")
        elif millis < 1000 and not parts:
            parts.append(f"{millis}ms")
        else:
            parts.append(f"{millis / 1000:g}s")
    return "".join(parts)


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
