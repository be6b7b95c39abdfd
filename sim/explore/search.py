"""Searching a scenario's ``explore:`` ranges for a world that breaks a guarantee.

:func:`search` asks Hypothesis (``find``: generate, then shrink) for a
combination of the block's values (:mod:`sim.scenario.explore`) whose world
fails the guarantee's check on evidence, running each world with
:func:`sim.pipeline.run_scenario` (once per combination: results are
remembered).  Hypothesis shrinks towards each range's ``from`` and each
list's first choice; then :func:`trim` removes what the failure does not
need: traffic actors, one at a time, and the other expectations.  The
search is deterministic for a given seed (Hypothesis draws from
``random.Random(seed)`` and keeps no example database).
"""
from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from typing import Any, Callable

from sim.pipeline import load_string, run_scenario
from sim.runner import RunnerError
from sim.scenario.explore import ExploreAxis
from sim.scenario.loader import ScenarioError
from sim.sweep.plan import Vary, scenario_yaml, variant_data


@dataclass
class Found:
    """The smallest failing world found: its data, the values chosen, what
    was removed, and how many worlds the search ran."""

    data: dict
    values: dict[str, Any]
    removed: list[str]
    worlds: int
    detail: str


@dataclass
class World:
    """Runs a scenario's variants and says whether ``guarantee`` fails."""

    guarantee: str
    file: str
    on_world: Callable[[int, bool], None] | None = None
    runs: int = 0
    invalid: int = 0
    _memo: dict[str, tuple[bool, str]] = field(default_factory=dict)

    def fails(self, data: dict) -> tuple[bool, str]:
        """(the guarantee's check fails on evidence, its detail) for ``data``;
        a variant the loader refuses or that cannot run does not fail."""
        text = scenario_yaml(data)
        if text in self._memo:
            return self._memo[text]
        try:
            sc = load_string(text, self.file)
        except ScenarioError:
            self.invalid += 1
            self._memo[text] = (False, "invalid")
            return self._memo[text]
        try:
            verdict = run_scenario(sc, write=False).verdict
        except RunnerError as exc:
            self._memo[text] = (False, f"cannot run: {exc}")
            return self._memo[text]
        self.runs += 1
        hits = [g for g in verdict.guarantees if g.id == self.guarantee]
        failing = [g for g in hits if g.status == "fail" and g.decided]
        result = (bool(failing), failing[0].detail if failing else "")
        self._memo[text] = result
        if self.on_world is not None:
            self.on_world(self.runs, result[0])
        return result


def varies(axes: list[ExploreAxis]) -> list[Vary]:
    """The block's axes as sweep settings (one key path, its values each)."""
    return [Vary(a.key, a.path, tuple(a.values()), False, False) for a in axes]


def search(data: dict, axes: list[ExploreAxis], world: World, budget: int,
           seed: int) -> Found | None:
    """The smallest failing world over ``axes``, or None within ``budget`` worlds."""
    from hypothesis import HealthCheck, Phase, assume, find, settings
    from hypothesis import strategies as st
    from hypothesis.errors import NoSuchExample

    plan = varies(axes)
    base = {k: v for k, v in data.items() if k != "explore"}
    strategy = st.tuples(*(st.sampled_from(v.values) for v in plan))

    def failing(values: tuple) -> bool:
        try:
            candidate = variant_data(base, plan, values)
        except LookupError:
            assume(False)
        return world.fails(candidate)[0]

    config = settings(max_examples=budget, database=None, deadline=None,
                      phases=[Phase.generate, Phase.shrink],
                      suppress_health_check=list(HealthCheck))
    try:
        values = find(strategy, failing, settings=config, random=random.Random(seed))
    except NoSuchExample:
        return None
    chosen = variant_data(base, plan, values)
    trimmed, removed = trim(chosen, world)
    detail = world.fails(trimmed)[1]
    return Found(trimmed, {v.key: x for v, x in zip(plan, values)}, removed, world.runs, detail)


def trim(data: dict, world: World) -> tuple[dict, list[str]]:
    """``data`` without the traffic actors and other expectations the failure
    does not need (each removal kept only if the world still fails)."""
    removed: list[str] = []
    current = copy.deepcopy(data)
    for i in reversed(range(len(current.get("traffic", [])))):
        if len(current["traffic"]) == 1:
            break
        candidate = copy.deepcopy(current)
        actor = candidate["traffic"].pop(i)
        if world.fails(candidate)[0]:
            current = candidate
            removed.append(f"traffic[{i}] ({actor.get('kind', 'actor')} on {actor.get('host')})")
    others = [e for e in current.get("expectations", []) if e.get("guarantee") != world.guarantee]
    if others:
        candidate = copy.deepcopy(current)
        candidate["expectations"] = [e for e in candidate["expectations"]
                                     if e.get("guarantee") == world.guarantee]
        # The cross-cutting guarantees no longer expected are waived, saying why.
        waive = dict(candidate.get("waive", {}))
        for e in others:
            waive.setdefault(e["guarantee"], f"not needed to reproduce {world.guarantee}")
        candidate["waive"] = waive
        if world.fails(candidate)[0]:
            current = candidate
            removed.append("expectations other than " + world.guarantee)
    return current, removed


