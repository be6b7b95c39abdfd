"""The SMTP feed's post-queue filter chain: virus scan, then spam levels.

Seed 001's order: the message is queued, "then scanned for viruses, and
deleted if needed.  This is not optional", (greylisting answers earlier,
in the SMTP dialogue: :mod:`mta.policy.greylist`), "then scanned for signs
of being spam and classified into 4 levels" (off by default), then
delivered.  :class:`FeedFilters` is that chain behind the queue's
:class:`~mta.queue.filtering.ContentFilter` interface.

**Cost.**  Each stage has a pool of scanner processes (an
``asyncio.Semaphore`` per stage, on the host's loop) and, in the
simulation, a service time in loop time, so load turns into queueing
delay.  The defaults (:data:`mta.feed.costs.DEFAULT_COSTS`) come from the
measurements in ``docs/design.md`` ("Content filters", ``benchmarks/filters.py``):

=====  ===============================  =========  ==========================
stage  service time                     processes  from
=====  ===============================  =========  ==========================
virus  1 ms + 0.1 ms per kB (1,000 B)   10         clamd via aioclamd: ~1 ms
                                                   small, 13-18 ms at 140 kB;
                                                   clamd ``MaxThreads`` 10
spam   150 ms                           2          spamd 75-290 ms a message;
                                                   spamd ``--max-children``
                                                   default 5, 2 on 2 cores
=====  ===============================  =========  ==========================

``modelled=False`` (live, with :class:`~mta.filters.clamav.ClamdScanner` or
:class:`~mta.filters.spamd.SpamdScorer`): no modelled service time, the
real scanner's time is the cost; the semaphores still bound concurrency.
The real adapters cannot be reached from the simulated loop (its
connections go to simulated hosts, not to a daemon on loopback), so the
simulation always runs the built-in scanner and scorer.

**Errors are final.**  A scanner error, a scorer failure or a scan that
takes longer than the stage's ``timeout`` is an ``error`` verdict and a
tempfail: the queue defers and filters again.  Never a silent pass.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

from mta.feed.costs import DEFAULT_COSTS, StageCost
from mta.filters.levels import SpamAction, SpamSettings, apply
from mta.filters.spam import SpamScorer
from mta.filters.virus import Status, VirusScanner
from mta.queue.filtering import FilterResult, StageVerdict


class _Pool:
    """A stage's scanner processes: a semaphore plus the modelled time."""

    def __init__(self, cost: StageCost, modelled: bool) -> None:
        self.cost = cost
        self.modelled = modelled
        self.sem = asyncio.Semaphore(cost.processes)

    async def run(self, size: int, job):
        """``(result, waited, service)`` of ``await job()`` in a free process.
        A job longer than the timeout raises ``asyncio.TimeoutError``."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        async with self.sem:
            t1 = loop.time()
            if self.modelled:
                await asyncio.sleep(self.cost.service_time(size))
            result = await asyncio.wait_for(job(), self.cost.timeout)
            return result, t1 - t0, loop.time() - t1


class FeedFilters:
    """Virus scan (always) then spam levels (per ``spam``), with costs.

    ``scanner``/``scorer``: any :class:`~mta.filters.virus.VirusScanner` /
    :class:`~mta.filters.spam.SpamScorer` (built-in in the simulation).
    Build one per feed host: the pools are that host's scanner processes.
    """

    def __init__(self, scanner: VirusScanner, scorer: SpamScorer, spam: SpamSettings, *,
                 costs: dict[str, StageCost] | None = None, modelled: bool = True) -> None:
        self.scanner = scanner
        self.scorer = scorer
        self.spam = spam
        self.costs = {**DEFAULT_COSTS, **(costs or {})}
        self._virus = _Pool(self.costs["virus"], modelled)
        self._spam = _Pool(self.costs["spam"], modelled)

    async def run(self, data: bytes) -> FilterResult:
        verdicts: list[StageVerdict] = []
        v = await self._scan(data)
        verdicts.append(v)
        if v.outcome == "error":
            return FilterResult(tuple(verdicts), data, tempfail=f"virus: {v.detail}")
        if v.outcome == "infected":
            return FilterResult(tuple(verdicts), data, discard=("virus", v.detail))
        if not self.spam.enabled:
            verdicts.append(StageVerdict("spam", "off", action="none", level="none"))
            return FilterResult(tuple(verdicts), data)
        return await self._classify(data, verdicts)

    async def _scan(self, data: bytes) -> StageVerdict:
        name = getattr(self.scanner, "name", "virus")
        try:
            verdict, waited, service = await self._virus.run(
                len(data), lambda: self.scanner.scan(data))
        except asyncio.TimeoutError:
            return StageVerdict("virus", "error", name,
                                f"timed out after {self._virus.cost.timeout:g} s")
        except Exception as exc:  # noqa: BLE001 - an adapter bug is an error verdict
            return StageVerdict("virus", "error", name, f"{type(exc).__name__}: {exc}")
        if verdict.status is Status.INFECTED:
            return StageVerdict("virus", "infected", verdict.scanner, ", ".join(verdict.signatures),
                                waited=waited, service=service)
        if verdict.status is Status.ERROR:
            return StageVerdict("virus", "error", verdict.scanner, verdict.reason,
                                waited=waited, service=service)
        return StageVerdict("virus", "clean", verdict.scanner, waited=waited, service=service)

    async def _classify(self, data: bytes, verdicts: list[StageVerdict]) -> FilterResult:
        name = getattr(self.scorer, "name", "spam")
        try:
            score, waited, service = await self._spam.run(len(data),
                                                          lambda: self.scorer.score(data))
        except asyncio.TimeoutError:
            score, waited, service = None, 0.0, 0.0
            error = f"timed out after {self._spam.cost.timeout:g} s"
        except Exception as exc:  # noqa: BLE001 - an adapter bug is an error verdict
            score, waited, service = None, 0.0, 0.0
            error = f"{type(exc).__name__}: {exc}"
        else:
            error = "" if score.ok else score.error
        if error:
            verdicts.append(StageVerdict("spam", "error", name, error, waited=waited,
                                         service=service))
            return FilterResult(tuple(verdicts), data, tempfail=f"spam: {error}")
        la = self.spam.decide(score)
        applied = apply(la, data)
        rules = " ".join(score.rule_names)
        verdicts.append(StageVerdict("spam", "scored", score.scorer or name, rules,
                                     level=la.level.value, action=la.action.value,
                                     score=float(score.score), waited=waited, service=service))
        if la.action is SpamAction.DELETE or applied.message is None:
            return FilterResult(tuple(verdicts), data,
                                discard=("spam", f"level {la.level.value} score "
                                                 f"{score.score:.1f} {rules}".rstrip()))
        return FilterResult(tuple(verdicts), applied.message)
