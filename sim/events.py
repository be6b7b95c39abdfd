"""The run and world events: facts only the simulation records.

The mail events (:mod:`mta.events`) are what components report; these are
what the simulation itself adds to the log: where the run starts and ends,
a host's link going up or down, and what the scenario expects of the run.
Importing this module registers their kinds with the codec
(:mod:`mta.events.codec`), so the log readers of :mod:`sim.evidence.log`,
which import it, decode every kind a run writes.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Literal, get_args

from mta.events.base import Event, need


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStarted(Event):
    """First event of every run: what ran, with which seed."""

    scenario: str
    seed: int
    kind: ClassVar[str] = "run_started"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunEnded(Event):
    """Last event of every run: the simulation stopped at ``t``."""

    kind: ClassVar[str] = "run_ended"


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkUp(Event):
    """A host's link came up.  ``host`` is the host the link attaches."""

    link: str
    kind: ClassVar[str] = "link_up"


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkDown(Event):
    """A host's link went down."""

    link: str
    kind: ClassVar[str] = "link_down"


#: What a scenario may expect of a guarantee.
Expectation = Literal["holds", "violated"]
EXPECTATIONS: tuple[Expectation, ...] = get_args(Expectation)


@dataclass(frozen=True, slots=True, kw_only=True)
class GuaranteeExpected(Event):
    """The run expects guarantee ``guarantee`` (an ID of docs/catalogue.md) to
    be ``expected`` (one of :data:`EXPECTATIONS`), checked with ``params``.

    The runner emits one per expectation right after :class:`RunStarted`
    (``host`` is the runner, ``"mxsim"``), so a report can be rebuilt from
    ``events.jsonl`` alone.  ``params`` must be JSON-serialisable.
    """

    guarantee: str
    expected: Expectation
    params: dict = dataclasses.field(default_factory=dict)
    #: the scenario's ``why:`` note: what the expectation stands for here
    why: str = ""
    #: with ``expected`` violated: the cause a counterexample must carry ("" = any)
    because: str = ""
    kind: ClassVar[str] = "guarantee_expected"

    def _validate(self) -> None:
        need(bool(self.guarantee), "guarantee_expected: guarantee must be named")
        need(isinstance(self.params, dict), "guarantee_expected: params must be a mapping")


@dataclass(frozen=True, slots=True, kw_only=True)
class ScenarioDescribed(Event):
    """What the scenario says of itself and its world, for the report: its
    one-line ``description`` and a ``topology`` mapping (``hosts``: name,
    address, link, access and roles of each host; ``mx``: each domain's MX
    records from the zones) and ``waived``, the cross-cutting guarantees the
    scenario does not expect, each with its reason.  Written by the runner
    right after the expectations, so the report explains the run from the
    log alone."""

    description: str = ""
    topology: dict = dataclasses.field(default_factory=dict)
    waived: dict = dataclasses.field(default_factory=dict)
    kind: ClassVar[str] = "scenario_described"

    def _validate(self) -> None:
        need(isinstance(self.topology, dict), "scenario_described: topology must be a mapping")
        need(isinstance(self.waived, dict), "scenario_described: waived must be a mapping")
