"""Searching a scenario's ``explore:`` ranges for a world that breaks a guarantee.

A candidate world is one index per axis of the block
(:mod:`sim.scenario.explore`), index 0 being the simplest value (a range's
``from``, a list's first choice).  The search is three deterministic steps,
each a sequence of questions "which is the first of these candidates that
fails?" put to :class:`~sim.explore.worlds.Worlds`, which judges the
candidates on the Dask cluster, many at once, and answers in the
candidates' order:

1. **generate** (:func:`draws`): the simplest world, then distinct worlds
   drawn from ``random.Random(seed)``, up to ``budget``;
2. **shrink** (:func:`shrink`): from the failing world, rounds of
   candidates that lower one axis each (to 0, a quarter, a half, three
   quarters of the way, or one step), axis by axis in the block's order;
   the first that still fails is taken, until none does: every axis is
   then as low as one step or a jump can take it;
3. **trim** (:func:`trim`): remove the traffic actors the failure does not
   need (rounds of one removal each), then the other expectations.

So the found world depends only on the scenario, the guarantee, the budget
and the seed: never on the number of workers or the order tasks finish in.
"""
from __future__ import annotations

import copy
import itertools
import math
import random
from dataclasses import dataclass
from typing import Any, Iterator

from sim.explore.worlds import Worlds
from sim.scenario.explore import ExploreAxis
from sim.sweep.plan import Vary, scenario_yaml, variant_data

#: Below this many combinations per world asked for, every combination is
#: listed and shuffled instead of drawn (drawing would mostly redraw).
_ENUMERATE_FACTOR = 2


@dataclass
class Found:
    """The smallest failing world found: its data, the values chosen, what
    was removed, how many worlds the search needed, and the check's detail."""

    data: dict
    values: dict[str, Any]
    removed: list[str]
    worlds: int
    detail: str


def varies(axes: list[ExploreAxis]) -> list[Vary]:
    """The block's axes as sweep settings (one key path, its values each)."""
    return [Vary(a.key, a.path, tuple(a.values()), False, False) for a in axes]


def draws(sizes: list[int], budget: int, seed: int) -> Iterator[tuple[int, ...]]:
    """Up to ``budget`` distinct index tuples: all zeros (the simplest
    world) first, then uniformly drawn ones from ``random.Random(seed)``."""
    rng = random.Random(seed)
    first = tuple(0 for _ in sizes)
    yield first
    total = math.prod(sizes)
    if total <= _ENUMERATE_FACTOR * budget:
        rest = [t for t in itertools.product(*(range(s) for s in sizes)) if t != first]
        rng.shuffle(rest)
        yield from rest[:budget - 1]
        return
    seen = {first}
    while len(seen) < budget:
        t = tuple(rng.randrange(s) for s in sizes)
        if t not in seen:
            seen.add(t)
            yield t


def shrink_candidates(current: tuple[int, ...]) -> list[tuple[int, ...]]:
    """One shrink round: each axis lowered alone, by a jump or a step,
    in the block's order and lowest value first."""
    out = []
    for i, c in enumerate(current):
        for j in sorted({0, c // 4, c // 2, (3 * c) // 4, c - 1}):
            if 0 <= j < c:
                out.append(current[:i] + (j,) + current[i + 1:])
    return out


class Space:
    """The scenario without its block, and its candidates as scenario text."""

    def __init__(self, data: dict, axes: list[ExploreAxis]) -> None:
        self.base = {k: v for k, v in data.items() if k != "explore"}
        self.plan = varies(axes)
        self.sizes = [len(v.values) for v in self.plan]

    def values(self, index: tuple[int, ...]) -> tuple[Any, ...]:
        return tuple(v.values[i] for v, i in zip(self.plan, index))

    def data(self, index: tuple[int, ...]) -> dict | None:
        """The candidate's scenario data (None: a key path does not fit it)."""
        try:
            return variant_data(self.base, self.plan, self.values(index))
        except LookupError:
            return None

    def text(self, index: tuple[int, ...]) -> str | None:
        data = self.data(index)
        return None if data is None else scenario_yaml(data)


def first_draw(space: Space, worlds: Worlds, budget: int, seed: int) -> tuple[int, ...] | None:
    """The first failing world among the drawn ones (generation alone)."""
    picks = list(draws(space.sizes, budget, seed))
    k = worlds.first_failing(space.text(t) for t in picks)
    return None if k is None else picks[k]


def shrink(space: Space, worlds: Worlds, index: tuple[int, ...]) -> tuple[int, ...]:
    """Lower ``index`` (a failing world) round by round while it still fails."""
    while True:
        candidates = shrink_candidates(index)
        k = worlds.first_failing(space.text(t) for t in candidates)
        if k is None:
            return index
        index = candidates[k]


def search(data: dict, axes: list[ExploreAxis], worlds: Worlds, budget: int,
           seed: int) -> Found | None:
    """The smallest failing world over ``axes``, or None within ``budget`` worlds."""
    space = Space(data, axes)
    index = first_draw(space, worlds, budget, seed)
    if index is None:
        return None
    index = shrink(space, worlds, index)
    chosen = space.data(index)
    assert chosen is not None          # it failed, so it was a scenario
    trimmed, removed = trim(chosen, worlds)
    detail = worlds.outcome(scenario_yaml(trimmed)).detail
    return Found(trimmed, {v.key: x for v, x in zip(space.plan, space.values(index))}, removed,
                 worlds.worlds, detail)


def trim(data: dict, worlds: Worlds) -> tuple[dict, list[str]]:
    """``data`` without the traffic actors and other expectations the failure
    does not need (each removal kept only if the world still fails)."""
    removed: list[str] = []
    current = copy.deepcopy(data)
    # Original positions, so the comment names the actor as the file does.
    positions = list(range(len(current.get("traffic", []))))
    while len(positions) > 1:
        candidates = []
        for k in reversed(range(len(positions))):
            candidate = copy.deepcopy(current)
            del candidate["traffic"][k]
            candidates.append((k, candidate))
        hit = worlds.first_failing(scenario_yaml(c) for _, c in candidates)
        if hit is None:
            break
        k, current = candidates[hit]
        position = positions.pop(k)
        actor = data["traffic"][position]
        removed.append(f"traffic[{position}] ({actor.get('kind', 'actor')} on {actor.get('host')})")
    others = [e for e in current.get("expectations", []) if e.get("guarantee") != worlds.guarantee]
    if others:
        candidate = copy.deepcopy(current)
        candidate["expectations"] = [e for e in candidate["expectations"]
                                     if e.get("guarantee") == worlds.guarantee]
        # The cross-cutting guarantees no longer expected are waived, saying why.
        waive = dict(candidate.get("waive", {}))
        for e in others:
            waive.setdefault(e["guarantee"], f"not needed to reproduce {worlds.guarantee}")
        candidate["waive"] = waive
        if worlds.first_failing([scenario_yaml(candidate)]) == 0:
            current = candidate
            removed.append("expectations other than " + worlds.guarantee)
    # The failing world itself must be known: ask about it (remembered, so free).
    worlds.first_failing([scenario_yaml(current)])
    return current, removed
