"""The queue's post-queue filter step: content filters between acceptance
and the first delivery attempt (seed 001: "queued, then scanned for
viruses and deleted if needed, ... then classified into 4 spam levels ...
then ready to be sent to the client's own mail server").

The queue knows a filter only through :class:`ContentFilter`:
``await run(data) -> FilterResult``.  What a result records is decided by
the pure :func:`filter_events`; :class:`FilterStep` is the I/O around it
(claim the recipients, run the filter, commit one batch, let the manager
schedule delivery).  A message is filtered once: the last verdict of a
finished run is ``complete`` and the queue state folds it
(``MessageState.filtered``), so a crash before that point filters again,
and so does a scanner error, which defers every recipient on the queue's
own retry schedule (``451 4.7.1``, never a silent pass; given up with a
bounce at the end of the lifetime, like any deferral).

Only mail received over SMTP is filtered (``origin == "smtp"``): the
queue's own DSNs and locally submitted mail are not the feed's traffic.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Protocol

from mta import events as ev
from mta.context import HostContext
from mta.delivery.client import RcptOutcome
from mta.queue.outcomes import DEFERRED, Failure, settle
from mta.queue.policy import QueuePolicy
from mta.queue.runtime import Journal, QueueRuntime
from mta.queue.state import MessageState
from mta.queue.store import QueueStore


def _fields(v: "StageVerdict") -> dict:
    return {f.name: getattr(v, f.name) for f in dataclasses.fields(v)}


@dataclass(frozen=True, slots=True)
class StageVerdict:
    """What one stage said: the stage's own fields of
    :class:`mta.events.FilterVerdict`, which :func:`filter_events` records
    as they are, adding where, when and which message."""

    stage: ev.FilterStage
    outcome: ev.FilterOutcome
    scanner: str = ""
    detail: str = ""
    level: str = ""
    action: str = ""
    score: float = 0.0
    waited: float = 0.0
    service: float = 0.0


@dataclass(frozen=True, slots=True)
class FilterResult:
    """One run of a content filter over a message.

    ``body``: the message to deliver (the input, or changed by a spam
    action).  ``discard``: ``(policy, reason)`` when the message is deleted
    (a virus, spam at a level whose action is delete).  ``tempfail``: why
    the run could not finish (a scanner error): the message is deferred and
    filtered again.  At most one of ``discard`` and ``tempfail``.
    """

    verdicts: tuple[StageVerdict, ...]
    body: bytes
    discard: tuple[str, str] | None = None
    tempfail: str = ""

    def __post_init__(self) -> None:
        if self.discard is not None and self.tempfail:
            raise ValueError("a filter result either discards or tempfails, not both")
        if not self.verdicts:
            raise ValueError("a filter result needs the verdicts it was decided by")


class ContentFilter(Protocol):
    """What the queue needs of a content filter (``mta.feed.chain.FeedFilters``)."""

    async def run(self, data: bytes) -> FilterResult: ...


#: Reply recorded for a message the filter could not judge (the queue's
#: own deferral; the same text as the filters' ``TEMPFAIL``).
TEMPFAIL_CODE = 451
TEMPFAIL_TEXT = "4.7.1 Message content could not be scanned, try again later"


def error_result(stage: str, scanner: str, reason: str, body: bytes) -> FilterResult:
    """The result of a filter that raised: an error verdict, a tempfail."""
    return FilterResult((StageVerdict(stage, "error", scanner, reason),), body, tempfail=reason)


def filter_events(m: MessageState, result: FilterResult, rcpts: list[str], *, host: str,
                  now: float, policy: QueuePolicy) -> tuple[list[ev.Event], dict[str, bytes],
                                                             list[Failure]]:
    """The events one filter run records about ``m`` (pure).

    Returns (events, changed bodies, recipients to give up with a bounce).
    Every verdict is a FilterVerdict; the last is ``complete`` when the run
    finished.  Deleted: one ``Discarded`` per recipient.  Tempfail: the
    deferrals :func:`mta.queue.outcomes.settle` gives a 451 (or the
    failures past the lifetime).
    """
    rcpts = [r for r in rcpts if r in m.rcpts]
    finished = not result.tempfail
    events: list[ev.Event] = []
    last = len(result.verdicts) - 1
    for i, v in enumerate(result.verdicts):
        events.append(ev.FilterVerdict(t=now, host=host, msg=m.msg, trace=m.trace,
                                       complete=finished and i == last, **_fields(v)))
    bodies: dict[str, bytes] = {}
    failed: list[Failure] = []
    if result.tempfail:
        text = f"{TEMPFAIL_TEXT} ({result.tempfail})"[:400]
        outcomes = [RcptOutcome(rcpt=r, status=DEFERRED, code=TEMPFAIL_CODE, text=text)
                    for r in rcpts]
        settled = settle(m, outcomes, host=host, now=now, policy=policy)
        events.extend(settled.events)
        failed = settled.failed
    elif result.discard is not None:
        policy_name, reason = result.discard
        events.extend(ev.Discarded(t=now, host=host, msg=m.msg, trace=m.trace, rcpt=r,
                                   policy=policy_name, reason=reason) for r in rcpts)
    return events, bodies, failed


class FilterStep:
    """Runs the content filter on queued messages before their first
    delivery (see the module docstring).  ``spawn`` starts a task (the
    queue's :meth:`~mta.queue.rounds.Rounds.spawn`), ``bounce`` builds the
    bounce of recipients given up, ``after(msg)`` re-arms the message's
    timer once the batch is durable."""

    def __init__(self, ctx: HostContext, runtime: QueueRuntime, store: QueueStore,
                 journal: Journal, policy: QueuePolicy, content: ContentFilter, *,
                 spawn: Callable, bounce: Callable, after: Callable[[str], None]) -> None:
        self.ctx = ctx
        self.runtime = runtime
        self.store = store
        self.journal = journal
        self.policy = policy
        self.content = content
        self.spawn = spawn
        self.bounce = bounce
        self.after = after

    @staticmethod
    def needs(m: MessageState) -> bool:
        """Is ``m`` still to be filtered before it may be delivered?"""
        return m.origin == "smtp" and not m.filtered

    def start(self, m: MessageState, rcpts: list[str]) -> None:
        """Claim ``rcpts`` and filter ``m`` in a task."""
        self.runtime.claim(m.msg, rcpts)
        self.spawn(self._run(m.msg, list(rcpts)))

    async def _run(self, msg: str, claimed: list[str]) -> None:
        rt = self.runtime
        with rt.holding(msg, claimed, self.after) as held:
            data = self.store.body(msg)
            try:
                result = await self.content.run(data)
            except Exception as exc:  # noqa: BLE001 - a filter bug is a tempfail, and reported
                result = error_result("virus", "", f"{type(exc).__name__}: {exc}", data)
            if not held.current:
                return
            m = rt.state.messages.get(msg)
            if m is None:
                return
            now = self.ctx.now()
            events, bodies, failed = filter_events(m, result, claimed, host=self.ctx.hostname,
                                                   now=now, policy=self.policy)
            if result.discard is None and not result.tempfail and result.body != data:
                bodies[msg] = result.body    # a spam action changed what is delivered
            if failed:
                more, dsn = self.bounce(m, failed, now)
                events.extend(more)
                bodies.update(dsn)
            await self.journal.commit(events, bodies)
