"""Stages and the chain that runs them.

A :class:`Stage` overrides only the phases it cares about; the default of
every hook is "no opinion".  A :class:`PolicyChain` runs the stages of a
phase in order: the first refusal decides; acceptances go on to the next
stage and pool their headers, tags, notes and grants.  Adding a stage (a
greylist, a virus scanner, POP-before-SMTP) is writing one Stage subclass and
putting it in the list a role builds: nothing else changes.

DNS is the one input a decision may need from outside.  A stage says what it
needs with :meth:`Stage.lookups`; the server answers those questions with
:func:`prefetch` (the only async, I/O-doing function of the policy package)
and puts the answers in ``facts.dns`` before asking for a decision.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

from mta.addresses import Address
from mta.dns.resolver import DnsError, DnsTimeout, NXDomain, ServFail
from mta.policy.decision import (Action, Decision, Facts, Lookup, LookupResult,
                                 Note, Phase)


class Stage:
    """Base of every policy stage.  ``name`` appears in the event log as
    the stage that decided a reply."""

    name = "stage"
    #: Largest message this stage allows, in octets (None: no limit).
    max_message_size: int | None = None

    def lookups(self, phase: Phase, facts: Facts) -> Sequence[Lookup]:
        """DNS questions to answer before ``phase`` is decided."""
        return ()

    def ehlo_keywords(self) -> Sequence[str]:
        """ESMTP keywords this stage advertises (``SIZE 10240000``)."""
        return ()

    def on_connect(self, facts: Facts) -> Decision | None:
        return None

    def on_helo(self, facts: Facts, name: str) -> Decision | None:
        return None

    def on_mail(self, facts: Facts, sender: Address) -> Decision | None:
        return None

    def on_rcpt(self, facts: Facts, rcpt: Address) -> Decision | None:
        return None

    def on_data(self, facts: Facts, message: bytes) -> Decision | None:
        return None


@dataclass(frozen=True)
class Outcome:
    """The chain's answer for one phase.  ``decision`` is the refusal that
    stopped the chain, or the last acceptance (stage ``""`` if no stage
    had an opinion); the other fields pool what every consulted stage said."""

    decision: Decision
    headers: tuple[tuple[str, str], ...] = ()
    tags: tuple[str, ...] = ()
    notes: tuple[tuple[str, Note], ...] = ()
    keep: bool = True

    @property
    def refused(self) -> bool:
        return self.decision.refused

    @property
    def stage(self) -> str:
        return self.decision.stage


_NO_OPINION = Decision.accept("")


_HOOKS = {Phase.CONNECT: "on_connect", Phase.HELO: "on_helo", Phase.MAIL: "on_mail",
          Phase.RCPT: "on_rcpt", Phase.DATA: "on_data"}


def _overrides(stage: Stage, name: str) -> bool:
    """Does ``stage``'s class replace :class:`Stage`'s no-opinion ``name``?"""
    return getattr(type(stage), name) is not getattr(Stage, name)


@dataclass(frozen=True)
class _Plan:
    """Which stages can have an opinion, per phase (in chain order): the
    others would only return ``None`` or ``()``."""

    stages: tuple[Stage, ...]
    deciders: dict[Phase, tuple[Stage, ...]]
    askers: tuple[Stage, ...]

    @classmethod
    def of(cls, stages: tuple[Stage, ...]) -> "_Plan":
        return cls(stages, {phase: tuple(s for s in stages if _overrides(s, hook))
                            for phase, hook in _HOOKS.items()},
                   tuple(s for s in stages if _overrides(s, "lookups")))


@dataclass
class PolicyChain:
    """An ordered list of stages."""

    stages: list[Stage] = field(default_factory=list)
    # Rebuilt whenever ``stages`` holds other stages (a relay replaces the
    # list); asking only the stages with a hook for the phase halves the
    # calls of a primary MX's chain.
    _plan: _Plan | None = field(default=None, init=False, repr=False, compare=False)

    def _current(self) -> _Plan:
        stages = tuple(self.stages)
        plan = self._plan
        if plan is None or plan.stages != stages:
            plan = self._plan = _Plan.of(stages)
        return plan

    def lookups(self, phase: Phase, facts: Facts) -> list[Lookup]:
        """Every lookup any stage wants for ``phase`` that is not yet
        answered, deduplicated, in stage order (deterministic)."""
        out: list[Lookup] = []
        for stage in self._current().askers:
            for q in stage.lookups(phase, facts):
                if q not in facts.dns and q not in out:
                    out.append(q)
        return out

    def ehlo_keywords(self) -> list[str]:
        out: list[str] = []
        for stage in self.stages:
            for kw in stage.ehlo_keywords():
                if kw not in out:
                    out.append(kw)
        return out

    @property
    def max_message_size(self) -> int | None:
        sizes = [s.max_message_size for s in self.stages if s.max_message_size]
        return min(sizes) if sizes else None

    def decide(self, phase: Phase, facts: Facts, arg: object = None) -> Outcome:
        """Run every stage's hook for ``phase``; stop at the first refusal."""
        headers: list[tuple[str, str]] = []
        tags: list[str] = []
        notes: list[tuple[str, Note]] = []
        keep = True
        last = _NO_OPINION
        for stage in self._current().deciders[phase]:
            d = _call(stage, phase, facts, arg)
            if d is None:
                continue
            notes.extend((d.stage, n) for n in d.notes)
            if d.refused:
                return Outcome(d, tuple(headers), tuple(tags), tuple(notes), keep)
            headers.extend(d.headers)
            tags.extend(d.tags)
            keep = keep and d.keep
            facts.grants.update(d.grants)
            last = d
        return Outcome(last, tuple(headers), tuple(tags), tuple(notes), keep)


def _call(stage: Stage, phase: Phase, facts: Facts, arg: object) -> Decision | None:
    if phase is Phase.CONNECT:
        return stage.on_connect(facts)
    if phase is Phase.HELO:
        return stage.on_helo(facts, arg)  # type: ignore[arg-type]
    if phase is Phase.MAIL:
        return stage.on_mail(facts, arg)  # type: ignore[arg-type]
    if phase is Phase.RCPT:
        return stage.on_rcpt(facts, arg)  # type: ignore[arg-type]
    return stage.on_data(facts, arg)  # type: ignore[arg-type]


async def prefetch(resolver: object | None, lookups: Iterable[Lookup],
                   facts: Facts) -> None:
    """Answer ``lookups`` through the injected resolver (mta.dns.resolver.Resolver)
    and store the results in ``facts.dns``.  Never raises for DNS trouble:
    a failure becomes ``LookupResult(error=...)`` for the stage to judge.
    Lookups run one after another, in order, so runs stay deterministic."""
    for q in lookups:
        if resolver is None:
            facts.dns[q] = LookupResult(error="no-resolver")
            continue
        try:
            if q.kind == "dnsbl":
                answers = await resolver.dnsbl(q.name, q.zone)  # type: ignore[attr-defined]
            elif q.kind == "a":
                answers = await resolver.a(q.name)  # type: ignore[attr-defined]
            elif q.kind == "txt":
                answers = await resolver.txt(q.name)  # type: ignore[attr-defined]
            else:
                raise ValueError(f"unknown lookup kind {q.kind!r}")
            facts.dns[q] = LookupResult(answers=tuple(answers))
        except NXDomain:
            facts.dns[q] = LookupResult()
        except DnsTimeout:
            facts.dns[q] = LookupResult(error="timeout")
        except ServFail:
            facts.dns[q] = LookupResult(error="servfail")
        except DnsError as exc:
            facts.dns[q] = LookupResult(error=f"error: {type(exc).__name__}")


__all__ = ["Stage", "PolicyChain", "Outcome", "prefetch", "Action"]
