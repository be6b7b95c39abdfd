"""Planting faults in real logs: a library scenario's run, and the edits a
bug would make to its event log.

:func:`real_run` runs a library scenario once (a test module calls it from a
module-scoped fixture), writes its ``events.jsonl`` into a
``tmp_path_factory`` folder and reads it back, so the checks judge the log
exactly as it is written on disk.  The
planting functions never change the run's log: each returns a new list in
which the events not planted keep their order (events are frozen
dataclasses; a rewritten one is a :func:`dataclasses.replace` copy, a moved
one goes where its new time puts it).  Targets are chosen by identity, so
two equal events are never confused.

:func:`held` and :func:`caught` are the two assertions every planted-fault
test makes: the real log meets the expectation; the planted log fails *on
evidence*, with a counterexample naming the planted message, recipient,
host or event.
"""
from __future__ import annotations

import dataclasses
from bisect import bisect_right
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

from mta import events as E
from mta.events.codec import to_dict
from sim.evidence.checks import run_check
from sim.evidence.checks.base import CheckResult
from sim.evidence.log import read_jsonl, write_jsonl
from sim.pipeline import load, planned_expectations, run_scenario
from sim.runner import Planned

LIBRARY = Path(__file__).resolve().parents[2] / "scenarios"

Ev = TypeVar("Ev", bound=E.Event)
Log = Sequence[E.Event]


@dataclasses.dataclass(frozen=True)
class RealRun:
    """One library scenario's run: its log (as read back from disk) and its
    expectations with the parameters the pipeline judged them with."""

    name: str
    events: tuple[E.Event, ...]
    expectations: tuple[Planned, ...]

    def expectation(self, gid: str, nth: int = 0) -> Planned:
        """The ``nth`` expectation of ``gid`` in the scenario file."""
        mine = [p for p in self.expectations if p.guarantee == gid]
        if nth >= len(mine):
            raise LookupError(f"{self.name} has {len(mine)} expectations of {gid!r}")
        return mine[nth]

    def judge(self, gid: str, events: Log | None = None, nth: int | None = 0,
              **override: Any) -> CheckResult:
        """Check ``gid`` on ``events`` (default: the real log) with the
        ``nth`` expectation's parameters, updated with ``override``
        (``nth=None``: a check the scenario does not name, with ``override``
        alone)."""
        base = {} if nth is None else self.expectation(gid, nth).params
        params = {**base, **override}
        return run_check(gid, list(self.events if events is None else events), params)


def real_run(tmp_path_factory, name: str) -> RealRun:
    """Run ``scenarios/<name>.yaml`` with its own seed, write its log into a
    fresh folder and read it back."""
    sc = load(LIBRARY / f"{name}.yaml")
    done = run_scenario(sc, write=False)     # the report's plots are not needed here
    log = write_jsonl(done.events, tmp_path_factory.mktemp(name) / "events.jsonl")
    return RealRun(name, tuple(read_jsonl(log)), tuple(planned_expectations(sc)))


# -- finding ------------------------------------------------------------------------

def every(events: Log, kind: type[Ev], where: Callable[[Ev], bool] = lambda e: True,
          ) -> list[Ev]:
    """The events of ``kind`` for which ``where`` holds, in log order."""
    return [e for e in events if isinstance(e, kind) and where(e)]


def first(events: Log, kind: type[Ev], where: Callable[[Ev], bool] = lambda e: True) -> Ev:
    """The first event of ``kind`` for which ``where`` holds (the real run
    must have one: a missing one is a broken test, said plainly)."""
    for e in events:
        if isinstance(e, kind) and where(e):
            return e
    raise LookupError(f"no {kind.__name__} event matches in the log")


# -- planting ---------------------------------------------------------------------

def _ids(targets: Iterable[E.Event]) -> set[int]:
    return {id(e) for e in targets}


def remove(events: Log, targets: Iterable[E.Event]) -> list[E.Event]:
    """The log without ``targets`` (by identity); each must be in the log."""
    doomed = _ids(targets)
    out = [e for e in events if id(e) not in doomed]
    if len(out) != len(events) - len(doomed):
        raise LookupError("a removed event is not in the log")
    return out


def rewrite(events: Log, target: E.Event, **changes: Any) -> list[E.Event]:
    """The log with ``target`` replaced, in place, by a copy with ``changes``
    (a time change goes through :func:`move`, to keep the log in order)."""
    if "t" in changes:
        raise ValueError("use move() to change an event's time")
    return rewrite_each(events, [target], **changes)


def rewrite_each(events: Log, targets: Iterable[E.Event], **changes: Any) -> list[E.Event]:
    """:func:`rewrite` for several events at once, each in its place."""
    chosen = _ids(targets)
    out = [dataclasses.replace(e, **changes) if id(e) in chosen else e for e in events]
    if sum(1 for a, b in zip(events, out) if a is not b) != len(chosen):
        raise LookupError("a rewritten event is not in the log")
    return out


def insert(events: Log, new: E.Event) -> list[E.Event]:
    """The log with ``new`` placed after every event stamped at or before its
    time (the order the simulation would have logged it in)."""
    out = list(events)
    out.insert(bisect_right([e.t for e in out], new.t), new)
    return out


def move(events: Log, target: E.Event, t: float) -> list[E.Event]:
    """The log with ``target`` restamped ``t`` and moved to where that time
    puts it among the others."""
    return insert(remove(events, [target]), dataclasses.replace(target, t=float(t)))


# -- asserting ----------------------------------------------------------------------

def held(result: CheckResult) -> None:
    """The real log meets a ``holds`` expectation: a decided pass on
    evidence."""
    assert result.status == "pass" and result.decided, result.detail
    assert result.judged, result.detail


def caught(result: CheckResult, *, msg: str | None = None, trace: str | None = None,
           rcpt: str | None = None, host: str | None = None,
           event: E.Event | None = None, cause: str | None = None) -> list[dict[str, Any]]:
    """The planted log fails on evidence, and some counterexample names
    every one of ``msg``, ``trace``, ``rcpt``, ``host`` (in its hosts),
    ``event`` (among its events) and ``cause`` (what ``because:`` names)
    that is given; returns those counterexamples."""
    assert result.status == "fail", f"planted fault not caught: {result.detail}"
    assert result.decided, f"planted fault made the check undecidable: {result.detail}"
    want = to_dict(event) if event is not None else None
    hits = [c for c in result.counterexamples
            if (msg is None or c["msg"] == msg) and (trace is None or c["trace"] == trace)
            and (rcpt is None or c["rcpt"] == rcpt)
            and (host is None or host in c["hosts"])
            and (want is None or want in c["events"])
            and (cause is None or c.get("cause") == cause)]
    assert hits, (f"no counterexample names the planted fault (msg={msg} trace={trace} "
                  f"rcpt={rcpt} host={host} event={want} cause={cause}): "
                  f"{[c['why'] for c in result.counterexamples]}")
    return hits
