"""The scenario's ``explore:`` block: the settings ``mxsim explore`` may vary.

Each entry names a key path as the file spells it and the values to search
over, either a range of durations or numbers or a list of choices::

    explore:
      - key: hosts[0].link.schedule.outages[0].for
        range: {from: 1h, to: 3d, step: 1h}
      - key: traffic[0].retry
        choices: [postfix, exim, sendmail]     # the simplest first

The search shrinks towards ``from`` and towards the first choice, so a
found world is as small as the block allows.  Key paths are read by
:func:`parse_key_path` (also the grammar of ``mxsim sweep --vary``).
"""
from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator, model_validator

from mta.units import DURATION_HINT, parse_duration
from sim.scenario.types import Strict

_STEP = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]")


def parse_key_path(key: str) -> tuple[str | int, ...]:
    """``roles[0].retry.lifetime`` -> ``("roles", 0, "retry", "lifetime")``;
    raises ValueError naming where the text stops making sense."""
    out: list[str | int] = []
    pos = 0
    while pos < len(key):
        m = _STEP.match(key, pos)
        dotted = m is not None and m.group(0).startswith(".")
        if m is None or (m.group(1) and bool(out) != dotted):
            raise ValueError(f"expected a key path such as roles[0].retry.lifetime, "
                             f"stuck at {key[pos:]!r}")
        out.append(m.group(1) if m.group(1) else int(m.group(2)))
        pos = m.end()
    if not out or not isinstance(out[0], str) or key.endswith("."):
        raise ValueError("expected a key path such as roles[0].retry.lifetime, "
                         "starting with a key name")
    return tuple(out)


class ExploreRange(Strict):
    """``from`` .. ``to`` (both included) in steps of ``step``; durations or numbers."""

    from_: Any = Field(alias="from")
    to: Any
    step: Any = 1

    @model_validator(mode="after")
    def _ordered(self) -> "ExploreRange":
        try:
            lo, hi, step = (parse_duration(v) for v in (self.from_, self.to, self.step))
        except ValueError:
            raise ValueError(f"expected from, to and step as {DURATION_HINT}") from None
        if hi < lo or step <= 0:
            raise ValueError("expected 'from' at most 'to' and a 'step' above zero")
        return self

    def values(self) -> list[Any]:
        """Every value of the range, as the file would write it."""
        from mta.units import format_duration
        lo, hi, step = (parse_duration(v) for v in (self.from_, self.to, self.step))
        count = int((hi - lo) / step + 1e-9) + 1
        plain = all(isinstance(v, (int, float)) for v in (self.from_, self.to, self.step))
        numbers = [lo + k * step for k in range(count)]
        if plain:
            return [int(x) if float(x).is_integer() else x for x in numbers]
        return [format_duration(x) for x in numbers]


class ExploreAxis(Strict):
    """One setting to search: its key path and a ``range`` or ``choices``."""

    key: str
    range: ExploreRange | None = None
    choices: list[Any] | None = Field(None, min_length=1)

    @field_validator("key")
    @classmethod
    def _path(cls, value: str) -> str:
        parse_key_path(value)
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> "ExploreAxis":
        if (self.range is None) == (self.choices is None):
            raise ValueError("expected exactly one of 'range' or 'choices'")
        return self

    @property
    def path(self) -> tuple[str | int, ...]:
        return parse_key_path(self.key)

    def values(self) -> list[Any]:
        """The values to search, simplest first."""
        return self.range.values() if self.range is not None else list(self.choices or [])
