"""The queue manager: accepts mail durably, schedules delivery attempts,
retries per preset, expires, bounces, holds and releases.

Every transition is an event.  The decisions are pure functions that
return events or say what is due: :mod:`mta.queue.scheduling` (what is due
at time t) and :mod:`mta.queue.outcomes` (what a delivery round's outcome
records: relays, deferrals, bounces with their DSN, delay warnings).  The
manager is the I/O around them, composed of objects given what they need:
a :class:`~mta.queue.runtime.QueueRuntime` (state, claims, epoch) and its
:class:`~mta.queue.runtime.Timers`, a :class:`~mta.queue.runtime.Journal`
that folds, reports and writes each batch, and the delivery
:class:`~mta.queue.rounds.Rounds`.  After a crash, replaying the store
rebuilds the state and the manager carries on (interrupted attempts are
retried).

Times: event stamps and every time kept in the state are ``ctx.now()``;
timers are set on ``loop.time()`` as "this many seconds from now", so a
live restart (a new monotonic clock) keeps the schedule.

The manager implements the receiving server's ``MessageSink`` (``accept``)
and the ETRN/finger ``ReleaseTarget`` (``held_count``, ``release``), plus
``submit`` for mail that enters without SMTP (traffic sources, DSNs).
"""
from __future__ import annotations

import asyncio
from typing import Any

from mta import events as ev
from mta.context import HostContext
from mta.delivery.client import Deliverer, DeliveryConfig
from mta.mailbox import MailboxStore
from mta.queue.filtering import ContentFilter, FilterStep
from mta.queue.message import ensure_message_id
from mta.queue.outcomes import queued_events, warning_events
from mta.queue.policy import QueueConfig, QueuePolicy
from mta.queue.rounds import Rounds
from mta.queue.runtime import Journal, QueueRuntime, Timers, id_number
from mta.queue.scheduling import due_now, expires_at, next_due
from mta.queue.state import MessageState, QueueState, RcptState
from mta.queue.store import QueueStore


class QueueManager:
    """One host's mail queue (see the module docstring)."""

    def __init__(self, ctx: HostContext, store: QueueStore, config: QueueConfig | None = None,
                 delivery: DeliveryConfig | None = None, mailboxes: MailboxStore | None = None,
                 content_filter: ContentFilter | None = None) -> None:
        self.ctx = ctx
        self.store = store
        self.config = config or QueueConfig()
        self.deliverer = Deliverer(ctx, delivery)
        self.mailboxes = mailboxes if mailboxes is not None else MailboxStore(ctx)
        self.policy = QueuePolicy(self.config)
        self.runtime = QueueRuntime()
        self.timers = Timers()
        self.journal = Journal(ctx, store, self.runtime, self.timers, on_durable=self._schedule)
        self.rounds = Rounds(ctx, self.runtime, store, self.journal, self.deliverer, self.mailboxes,
                             self.policy, after=self._schedule)
        # The post-queue content filter (the SMTP feed's virus and spam
        # stages): every message received over SMTP passes it once before
        # its first delivery attempt (mta.queue.filtering).
        self.filters = (FilterStep(ctx, self.runtime, store, self.journal, self.policy,
                                   content_filter, spawn=self.rounds.spawn,
                                   bounce=self.rounds.bounce, after=self._schedule)
                        if content_filter is not None else None)

    @property
    def state(self) -> QueueState:
        """The queue's state: the fold of its events."""
        return self.runtime.state

    def schedule_for(self, domain: str) -> Any:
        """The retry schedule for ``domain`` (see :class:`QueuePolicy`)."""
        return self.policy.schedule_for(domain)

    # ------------------------------------------------------------------
    # lifecycle
    async def start(self, restarted: bool | None = None) -> int:
        """Recover from the store and schedule everything; returns the number
        of messages recovered.  Emits HostRestarted when ``restarted`` (or,
        when not given, when the store held any message)."""
        rec = self.store.load()
        self.runtime.state = QueueState().replay(rec.events)
        self.runtime.state.finished.clear()
        self.ctx.reserve_ids("m", rec.id_high)   # keep queue IDs unique across restarts
        for msg in list(self.state.messages):
            self._schedule(msg)
        n = len(self.state.messages)
        if restarted or (restarted is None and n > 0):
            self.journal.emit([ev.HostRestarted(t=self.ctx.now(), host=self.ctx.hostname, recovered=n)])
        return n

    def crash(self) -> None:
        """Simulated crash: lose everything but the store's durable part."""
        self.runtime.epoch += 1
        self.journal.emit([ev.HostCrashed(t=self.ctx.now(), host=self.ctx.hostname)])
        self.timers.cancel_all()
        self.rounds.abandon()
        self.deliverer.close()
        self.store.crash()
        self.runtime.state = QueueState()
        self.runtime.claimed.clear()
        self.rounds.reset()

    async def restart(self) -> int:
        """Come back after :meth:`crash`: replay the store and resume."""
        return await self.start(restarted=True)

    async def close(self) -> None:
        """Stop timers and tasks (no crash event), drop idle connections."""
        self.runtime.epoch += 1          # cancelled tasks must not schedule anything new
        self.timers.cancel_all()
        tasks = self.rounds.abandon()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.deliverer.close()

    # ------------------------------------------------------------------
    # entry points
    async def accept(self, *, conn: str, client_ip: str, helo: str, mail_from: str,
                     rcpts: list[str], acknowledged: list[str], data: bytes) -> str:
        """Store a message received over SMTP durably; return its queue ID.

        ``acknowledged``: every recipient that got a 2xx to RCPT (recorded in
        MessageAccepted); ``rcpts``: those the server really keeps, each
        queued.  The server answers 250 only after this returns; if it
        raises, the server answers 4xx and the client keeps the message."""
        msg, trace, data, now = self._new(data)
        first = ev.MessageAccepted(t=now, host=self.ctx.hostname, msg=msg, trace=trace, conn=conn,
                                   client_ip=client_ip, helo=helo, mail_from=mail_from,
                                   rcpts=tuple(acknowledged), size=len(data))
        await self._enqueue(first, rcpts, data)
        return msg

    async def submit(self, mail_from: str, rcpts: list[str], data: bytes, origin: str = "local") -> str:
        """Queue a message that did not come over SMTP; return its queue ID."""
        msg, trace, data, now = self._new(data)
        first = ev.MessageSubmitted(t=now, host=self.ctx.hostname, msg=msg, trace=trace,
                                    mail_from=mail_from, rcpts=tuple(rcpts), size=len(data), origin=origin)
        await self._enqueue(first, rcpts, data)
        return msg

    def _new(self, data: bytes) -> tuple[str, str, bytes, float]:
        msg = self.ctx.next_id("m")
        data, trace = ensure_message_id(data, f"{msg.rpartition('/')[2]}@{self.ctx.hostname}")
        return msg, trace, data, self.ctx.now()

    async def _enqueue(self, first: ev.Event, rcpts: list[str], data: bytes) -> None:
        msg, trace = first.msg, first.trace  # type: ignore[attr-defined]
        if not rcpts:
            # A message with no recipient would never reach a final state:
            # it would sit in the queue (and the store) for ever.
            raise ValueError(f"{msg}: no recipients to queue")
        events = [first] + queued_events(self.ctx.hostname, msg, trace, rcpts, first.t, self.policy.held)
        epoch = self.runtime.epoch
        # Durable first, then visible: acknowledged means on disk.
        durable = self.store.write(events, {msg: data}, id_high=id_number(msg))
        try:
            # Shielded: if the caller is cancelled (the SMTP client went away
            # during the commit) the batch still reaches the disk, and then
            # the message is ours and must be queued here too, not only found
            # again at the next restart.
            await asyncio.shield(durable)
        except asyncio.CancelledError:
            durable.add_done_callback(lambda f: self._committed_anyway(f, epoch, events, msg))
            raise
        if epoch != self.runtime.epoch:
            raise RuntimeError("host crashed before the message was durable")
        self.journal.apply(events)
        self._schedule(msg)

    def _committed_anyway(self, fut: asyncio.Future, epoch: int, events: list[ev.Event],
                          msg: str) -> None:
        """The batch of an abandoned acceptance became durable: queue it
        (the client saw no 250 and may send it again: a duplicate, not a loss)."""
        if fut.cancelled() or fut.exception() is not None or epoch != self.runtime.epoch:
            return
        self.journal.apply(events)
        self._schedule(msg)

    # -- ReleaseTarget ----------------------------------------------------
    def _held(self, domain: str, include_subdomains: bool) -> dict[str, list[RcptState]]:
        domain = domain.lower().rstrip(".")
        claimed = self.runtime.claimed
        out: dict[str, list[RcptState]] = {}
        for m in self.state.messages.values():
            rs = [r for r in m.rcpts.values()
                  if r.held and (m.msg, r.rcpt) not in claimed
                  and (r.domain == domain or (include_subdomains and r.domain.endswith("." + domain)))]
            if rs:
                out[m.msg] = rs
        return out

    def held_count(self, domain: str, include_subdomains: bool = False) -> int:
        """Messages with recipients held for ``domain`` and not being delivered."""
        return len(self._held(domain, include_subdomains))

    def release(self, domain: str, include_subdomains: bool = False, trigger: str = "etrn",
                client_ip: str = "") -> int:
        """Start delivery of mail held for ``domain`` (new connections, as
        tasks); emit Released; return how many messages were started."""
        held = self._held(domain, include_subdomains)
        for msg, rs in held.items():
            self._start(self.state.messages[msg], rs)
        self.journal.emit([ev.Released(t=self.ctx.now(), host=self.ctx.hostname, domain=domain,
                                       trigger=trigger, count=len(held), client_ip=client_ip)])
        return len(held)

    def flush(self) -> int:
        """Retry every deferred, not held recipient now (``postqueue -f``)."""
        n = 0
        claimed = self.runtime.claimed
        for m in list(self.state.messages.values()):
            rs = [r for r in m.rcpts.values() if not r.held and (m.msg, r.rcpt) not in claimed]
            if rs:
                n += 1
                self._start(m, rs)
        return n

    # -- operator actions (seed 001: extend the queue time, switch to POP3) --
    def set_lifetime(self, domain: str, lifetime: float) -> None:
        """Keep mail to ``domain`` ``lifetime`` seconds after queueing, from
        now on and for what is queued already; emits QueueLifetimeSet and
        re-arms the timers (a held recipient's expiry moves with it)."""
        previous = self.policy.set_lifetime(domain, lifetime)
        self.journal.emit([ev.QueueLifetimeSet(t=self.ctx.now(), host=self.ctx.hostname,
                                               domain=domain, lifetime=float(lifetime),
                                               previous=float(previous))])
        for msg in list(self.state.messages):
            self._schedule(msg)

    def set_local(self, domain: str, local: bool) -> int:
        """File mail to ``domain`` into this host's mailboxes (``local``) or
        relay it again; recipients waiting for a retry are tried at once
        under the new rule.  Returns how many messages were started."""
        self.policy.set_local(domain, local)
        claimed = self.runtime.claimed
        n = 0
        for m in list(self.state.messages.values()):
            rs = [r for r in m.rcpts.values() if r.domain == domain and not r.held
                  and (m.msg, r.rcpt) not in claimed]
            if rs:
                n += 1
                self._start(m, rs)
        return n

    async def discard(self, msg: str, rcpt: str, policy: str, reason: str) -> None:
        """Delete one recipient's copy on purpose (virus, spam delete)."""
        m = self.state.messages[msg]
        await self.journal.commit([ev.Discarded(t=self.ctx.now(), host=self.ctx.hostname, msg=msg,
                                                trace=m.trace, rcpt=rcpt, policy=policy, reason=reason)])

    # -- timers: what is due, decided by mta.queue.scheduling ---------------
    def _start(self, m: MessageState, rcpts: list[RcptState]) -> None:
        """Start delivery rounds for ``rcpts`` (or, for a message not yet
        through the content filter, the filter run); the timer waits for them."""
        if self.filters is not None and self.filters.needs(m):
            self.filters.start(m, [r.rcpt for r in rcpts])
            self.timers.cancel(m.msg)
            return
        self.rounds.start(m, rcpts)
        self.timers.cancel(m.msg)

    def _schedule(self, msg: str) -> None:
        """(Re)arm the timer of ``msg`` for when something is next due."""
        self.timers.cancel(msg)
        m = self.state.messages.get(msg)
        if m is None:
            return
        now = self.ctx.now()
        due = next_due(m, now, self.runtime.claimed, self.policy)
        if due is None:
            return
        self.timers.arm(msg, max(0.0, due - now), self._fire)

    def _fire(self, msg: str) -> None:
        self.timers.fired(msg)
        m = self.state.messages.get(msg)
        if m is None:
            return
        now = self.ctx.now()
        due = due_now(m, now, self.runtime.claimed, self.policy)
        if due.warn:
            # Synchronously, so the warning is folded (m.warned) before
            # the next timer is computed below.
            self._warn(m, due.warn, now)
        if due.expire:
            self.rounds.expire(m, due.expire)
        if due.attempt:
            self._start(m, due.attempt)
        self._schedule(msg)

    def _warn(self, m: MessageState, waiting: list[RcptState], now: float) -> None:
        until = min(expires_at(m, r, self.policy) for r in waiting)
        events, bodies = warning_events(m, waiting, host=self.ctx.hostname, dsn_id=self.ctx.next_id("m"),
                                        original=self.store.body(m.msg), now=now,
                                        held=self.policy.held, retry_until=until)
        self.journal.record(events, bodies)
