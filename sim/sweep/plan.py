"""A sweep's plan: the product of varied settings and seeds, as pure data.

``--vary KEY=VALUES`` names a key path as the scenario file spells it
(``roles[0].retry.lifetime``, ``hosts[1].link.schedule.outages[0].for``) and
its values: a comma list of YAML scalars (``1d,2d,3d``, ``postfix,exim``) or
a range ``FROM..TO/STEP`` of durations or numbers (``12h..72h/12h``, both
ends included).  :func:`expand` gives one :class:`Point` per combination
and seed, in a fixed order; :func:`variant_data` applies a point's values
to the scenario's parsed data.  Nothing here runs or validates a world;
:mod:`sim.sweep.validate` does that before any run starts.
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from typing import Any

import yaml

from mta.units import format_duration, parse_duration
from sim.scenario.explore import parse_key_path

#: More values than this in one range is almost certainly a typo in STEP.
MAX_RANGE_VALUES = 10_000

_RANGE = re.compile(r"^(?P<lo>[^,]+?)\.\.(?P<hi>[^,]+)/(?P<step>[^,/]+)$")


class PlanError(ValueError):
    """A ``--vary`` or ``--seeds`` argument that cannot be read."""


@dataclass(frozen=True)
class Vary:
    """One varied setting: its key path and the values to try.

    ``numeric`` is true when every value is a number or a duration; the
    dataset then stores the setting as seconds (or the number), and the
    report plots it on a numeric axis.  ``durations`` says the values were
    written with units (the report labels the axis in time).
    """

    key: str
    path: tuple[str | int, ...]
    values: tuple[Any, ...]
    numeric: bool
    durations: bool

    def number(self, value: Any) -> float:
        """``value`` as a number (seconds for a duration)."""
        return parse_duration(value)

    def column_value(self, value: Any) -> float | str:
        """How ``value`` is stored in the dataset's column for this key."""
        return self.number(value) if self.numeric else value_text(value)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "values": list(self.values)}


@dataclass(frozen=True)
class Point:
    """One run of the sweep: a value for every varied key, and a seed."""

    values: tuple[Any, ...]      # in the order of the plan's varies
    seed: int

    @property
    def run_id(self) -> str:
        """A stable name for this run (the dataset's part file, its folder)."""
        text = json.dumps([list(map(value_text, self.values)), self.seed], separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_path(key: str) -> tuple[str | int, ...]:
    """``roles[0].retry.lifetime`` -> ``("roles", 0, "retry", "lifetime")``."""
    try:
        return parse_key_path(key)
    except ValueError as exc:
        raise PlanError(f"--vary {key!r}: {exc}") from None


def parse_vary(spec: str) -> Vary:
    """``KEY=VALUES`` as a :class:`Vary` (see the module docstring)."""
    key, sep, text = spec.partition("=")
    key = key.strip()
    if not sep or not key or not text.strip():
        raise PlanError(f"--vary {spec!r}: expected KEY=VALUES, such as "
                        f"roles[0].retry.lifetime=1d,2d,3d or ...=12h..72h/12h")
    path = parse_path(key)
    m = _RANGE.match(text.strip())
    values = _range(spec, m) if m else _list(spec, text)
    if len(set(map(value_text, values))) != len(values):
        raise PlanError(f"--vary {spec!r}: a value is given twice")
    numeric = all(_is_duration(v) for v in values)
    durations = numeric and any(isinstance(v, str) for v in values)
    return Vary(key, path, tuple(values), numeric, durations)


def parse_seeds(text: str) -> tuple[int, ...]:
    """``A-B`` (both included), ``N``, or a comma list of those."""
    seeds: list[int] = []
    for part in text.split(","):
        lo, dash, hi = part.strip().partition("-")
        try:
            a = int(lo)
            b = int(hi) if dash else a
        except ValueError:
            raise PlanError(f"--seeds {text!r}: expected A-B (such as 1-10), N, "
                            f"or a comma list of those") from None
        if b < a:
            raise PlanError(f"--seeds {text!r}: {part.strip()} ends before it starts")
        seeds += range(a, b + 1)
    if len(set(seeds)) != len(seeds):
        raise PlanError(f"--seeds {text!r}: a seed is given twice")
    return tuple(seeds)


def expand(varies: list[Vary], seeds: tuple[int, ...]) -> list[Point]:
    """Every combination of the varied values, each with every seed: the
    first ``--vary`` changes slowest and the seed fastest."""
    combos = itertools.product(*(v.values for v in varies))
    return [Point(tuple(c), s) for c in combos for s in seeds]


def label(varies: list[Vary] | tuple[Vary, ...], values: tuple[Any, ...]) -> str:
    """``key=value ...``: a combination, for messages and file headers."""
    return " ".join(f"{v.key}={value_text(x)}" for v, x in zip(varies, values))


def combinations(varies: list[Vary]) -> list[tuple[Any, ...]]:
    """Every combination of the varied values (the points without seeds)."""
    return list(itertools.product(*(v.values for v in varies)))


class PathError(LookupError):
    """A key path that does not lead anywhere in the scenario's data."""


def variant_data(data: dict, varies: list[Vary], values: tuple[Any, ...]) -> dict:
    """A copy of the scenario's parsed ``data`` with each varied key set.

    A missing last key (or a missing mapping on the way) is added, so a
    default can be varied; the scenario's validation then names any key the
    format does not know.  A list index out of range, or a step into a
    value that is not a mapping or list (a shorthand such as ``retry:
    exim``), raises :class:`PathError`.
    """
    out = copy.deepcopy(data)
    for vary, value in zip(varies, values):
        _assign(out, vary, value)
    return out


def _assign(data: dict, vary: Vary, value: Any) -> None:
    node: Any = data
    for i, step in enumerate(vary.path):
        where = _format(vary.path[:i]) or "the scenario"
        last = i == len(vary.path) - 1
        if isinstance(step, int):
            if not isinstance(node, list):
                raise PathError(f"{where} is not a list, so it has no [{step}]")
            if step >= len(node):
                raise PathError(f"{where} has {len(node)} item{'s' if len(node) != 1 else ''}, "
                                f"so there is no [{step}]")
        elif not isinstance(node, dict):
            raise PathError(f"{where} is {node!r}, not a mapping of keys; write it out as "
                            f"one in the scenario to vary its '{step}'")
        if last:
            node[step] = copy.deepcopy(value)
        else:
            if isinstance(node, dict) and step not in node:
                node[step] = {}
            node = node[step]


def _format(path: tuple) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text


def _list(spec: str, text: str) -> list[Any]:
    values = []
    for part in _split_top(text):
        if not part.strip():
            raise PlanError(f"--vary {spec!r}: an empty value between commas")
        try:
            values.append(yaml.safe_load(part))
        except yaml.YAMLError:
            raise PlanError(f"--vary {spec!r}: {part.strip()!r} is not a YAML value") from None
    return values


def _split_top(text: str) -> list[str]:
    """Split on commas outside brackets, so ``[a, b],[c]`` is two values."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += ch in "[{"
        depth -= ch in "]}"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return parts + [cur]


def _range(spec: str, m: re.Match) -> list[Any]:
    try:
        lo, hi, step = (parse_duration(m.group(g)) for g in ("lo", "hi", "step"))
    except ValueError as exc:
        raise PlanError(f"--vary {spec!r}: FROM..TO/STEP takes durations or numbers: "
                        f"{exc}") from None
    if step <= 0 or hi < lo:
        raise PlanError(f"--vary {spec!r}: expected FROM <= TO and a STEP above zero")
    count = int((hi - lo) / step + 1e-9) + 1
    if count > MAX_RANGE_VALUES:
        raise PlanError(f"--vary {spec!r}: {count} values, more than {MAX_RANGE_VALUES}")
    # Computed from the start each time, so no rounding error accumulates.
    numbers = [lo + k * step for k in range(count)]
    plain = all(_plain_number(m.group(g)) for g in ("lo", "hi", "step"))
    if plain:
        return [int(x) if float(x).is_integer() else x for x in numbers]
    return [format_duration(x) for x in numbers]


def _plain_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_duration(value: Any) -> bool:
    try:
        parse_duration(value)
    except ValueError:
        return False
    return True


class _ScenarioDumper(yaml.SafeDumper):
    """Multi-line text (zone files) as ``|`` blocks, as people write them."""


def _text_block(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value,
                                   style="|" if "\n" in value else None)


_ScenarioDumper.add_representer(str, _text_block)


def scenario_yaml(data: dict) -> str:
    """Scenario data as YAML text: keys in the file's order, zones as blocks."""
    return yaml.dump(data, Dumper=_ScenarioDumper, sort_keys=False, allow_unicode=True,
                     width=100)


def value_text(value: Any) -> str:
    """A varied value as one line of text (YAML flow style for lists and mappings)."""
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix(
        "\n...").strip()
