"""The sweep's scenario variants, all validated before any run starts.

:func:`prepare` reads the base scenario, parses the ``--vary`` and
``--seeds`` arguments (:mod:`sim.sweep.plan`) and validates the scenario of
every combination of values with the ordinary loader
(:func:`sim.pipeline.load_string`), so an unknown key, a value the format
refuses, or a combination that does not fit together (a dial-up window
longer than its period) stops the sweep with a message naming the setting,
before a single world is built.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sim.pipeline import load, load_string
from sim.scenario.loader import ScenarioError
from sim.scenario.schema import Scenario
from sim.sweep.plan import (PathError, PlanError, Point, Vary, combinations, expand, label,
                            parse_seeds, parse_vary, scenario_yaml, value_text, variant_data)


class SweepInputError(ValueError):
    """Bad sweep input; ``problems`` holds one line per mistake."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Sweep:
    """A validated sweep: the base scenario's text, the varied settings,
    the seeds, and each combination's scenario text."""

    scenario_file: str
    text: str
    name: str
    varies: tuple[Vary, ...]
    seeds: tuple[int, ...]
    vary_specs: tuple[str, ...]
    seeds_spec: str | None
    variant_texts: dict[tuple[str, ...], str]

    @property
    def digest(self) -> str:
        """SHA-256 of the base scenario's text: a sweep folder belongs to one."""
        return hashlib.sha256(self.text.encode()).hexdigest()

    def manifest(self) -> dict:
        """What ``DIR/sweep.json`` records: enough to resume the sweep."""
        return {"scenario_file": self.scenario_file, "scenario": self.name,
                "scenario_sha256": self.digest, "scenario_text": self.text,
                "vary": list(self.vary_specs), "seeds": self.seeds_spec,
                "keys": [v.key for v in self.varies], "runs": len(self.points())}

    def points(self) -> list[Point]:
        return expand(list(self.varies), self.seeds)

    def scenario_text(self, point: Point) -> str:
        """The scenario file that ``point`` runs (without the seed)."""
        return self.variant_texts[_combo_key(point.values)]

    def label(self, values: tuple[Any, ...]) -> str:
        """``key=value ...`` for messages and file headers."""
        return label(self.varies, values)


def prepare(scenario_file: str, vary_specs: list[str], seeds: str | None,
            text: str | None = None) -> Sweep:
    """Parse and validate everything a sweep needs; raises
    :class:`SweepInputError` listing every problem found.

    ``text`` is the base scenario's text when it does not come from the
    file (a resumed sweep keeps its own copy); messages still name the file.
    """
    try:
        base = load(scenario_file) if text is None else load_string(text, scenario_file)
    except ScenarioError as exc:
        raise SweepInputError([str(p) for p in exc.problems]) from None
    if text is None:
        text = Path(scenario_file).read_text(encoding="utf-8")
    problems: list[str] = []
    varies: list[Vary] = []
    for spec in vary_specs:
        try:
            varies.append(parse_vary(spec))
        except PlanError as exc:
            problems.append(str(exc))
    keys = [v.key for v in varies]
    problems += [f"--vary {k}: given twice" for k in sorted({k for k in keys if keys.count(k) > 1})]
    try:
        seed_list = parse_seeds(seeds) if seeds is not None else (base.seed,)
    except PlanError as exc:
        problems.append(str(exc))
        seed_list = ()
    if problems:
        raise SweepInputError(problems)
    data = yaml.safe_load(text)
    variants: dict[tuple[str, ...], str] = {}
    for combo in combinations(varies):
        found = _variant_problems(scenario_file, data, varies, combo, label(varies, combo))
        if isinstance(found, list):
            problems += [p for p in found if p not in problems]
        else:
            variants[_combo_key(combo)] = found
    if problems:
        raise SweepInputError(problems)
    return Sweep(scenario_file, text, base.name, tuple(varies), tuple(seed_list),
                 tuple(vary_specs), seeds, variants)


def load_variant(text: str, name: str) -> Scenario:
    """A variant's scenario from its text (in a worker)."""
    return load_string(text, name)


def _variant_problems(scenario_file: str, data: dict, varies: list[Vary],
                      combo: tuple[Any, ...], name: str) -> str | list[str]:
    """The variant's text, or the problems that make it invalid."""
    try:
        changed = variant_data(data, varies, combo)
    except PathError as exc:
        return [f"{scenario_file}: --vary {_failing_key(data, varies, combo)}: {exc}"]
    text = scenario_yaml(changed)
    try:
        load_string(text, scenario_file)
    except ScenarioError as exc:
        # Line numbers would point into the generated text: name the setting instead.
        return [f"{scenario_file} with {name}: {p.path}: {p.message}" if p.path
                else f"{scenario_file} with {name}: {p.message}" for p in exc.problems]
    return text


def _failing_key(data: dict, varies: list[Vary], combo: tuple[Any, ...]) -> str:
    for i in range(len(varies)):
        try:
            variant_data(data, varies[i:i + 1], combo[i:i + 1])
        except PathError:
            return varies[i].key
    return varies[-1].key


def _combo_key(values: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple(value_text(v) for v in values)
