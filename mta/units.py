"""The one duration grammar: scenarios, check parameters, retry rules, ``--at``.

A duration is a non-negative number of seconds, or text made of numbers
each followed by a unit, largest unit first and each unit at most once:

========  ===========  =====================
unit      seconds      example
========  ===========  =====================
``w``     604800       ``1w``
``d``     86400        ``2d4h`` = 187200
``h``     3600         ``1.5h`` = 5400
``m``     60           ``90m``, ``1h30m``
``s``     1            ``45s``
``ms``    0.001        ``250ms``
========  ===========  =====================

Text that is a plain number (``"300"``, ``"1.5"``) is seconds.  Units are
lower case (``M`` could be a month), and ``4h2d`` or ``2h2h`` are refused
as probable typos.  This is the syntax of Postfix's and Exim's time
parameters (``5d``, ``1h30m``), so retry rules copied from an MTA's
configuration read the same here.

Every failure is a :class:`ValueError` whose message says what was
expected; callers put it next to the key, parameter or option it came
from (the scenario loader as ``file:line:col: key.path: expected ...``).
"""
from __future__ import annotations

import math
import re

__all__ = ["DURATION_HINT", "DURATION_PATTERN", "DURATION_UNITS", "format_duration",
           "parse_duration"]

#: Seconds per duration unit, largest first: the order units must appear in.
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
#: A regular expression for duration text with units (for JSON Schemas).
DURATION_PATTERN = _DURATION.pattern

#: What a duration looks like, for error messages.
DURATION_HINT = "a duration such as 90m, 2d, 36h, 2d4h, 1.5s or a number of seconds"

_RANK = {unit: rank for rank, unit in enumerate(DURATION_UNITS)}


def parse_duration(value: object) -> float:
    """Seconds in ``value``: a non-negative number, or text like ``2d4h``.

    Raises :class:`ValueError` (``expected a duration such as ...``) for
    anything else, naming a negative value as such.
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
            if text.startswith("-"):
                _parse_units(text[1:], value)   # a syntax error is reported as such
                raise _negative(value) from None
            seconds = _parse_units(text, value)
    else:
        raise ValueError(f"expected {DURATION_HINT}, got {value!r}")
    if not math.isfinite(seconds):
        raise ValueError(f"expected {DURATION_HINT}, got {value!r}")
    if seconds < 0:
        raise _negative(value)
    return seconds


def _negative(value: object) -> ValueError:
    return ValueError(f"expected {DURATION_HINT} (not negative), got {value!r}")


def _parse_units(text: str, original: object) -> float:
    if not _DURATION.match(text):
        raise ValueError(f"expected {DURATION_HINT}, got {original!r}")
    last = -1
    total = 0.0
    for number, unit in _PART.findall(text):
        rank = _RANK[unit]
        if rank <= last:
            raise ValueError(
                f"expected units largest first and each once (like 2d4h), got {original!r}")
        last = rank
        total += float(number) * DURATION_UNITS[unit]
    return total


def format_duration(seconds: float) -> str:
    """The shortest exact text for ``seconds``: 187200 -> ``2d4h``, 1.5 -> ``1.5s``.

    ``parse_duration(format_duration(x)) == x`` for any whole number of
    milliseconds.  Weeks are not used: ``8d`` reads better than ``1w1d``.
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
