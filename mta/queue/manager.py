"""The queue manager: accepts mail durably, schedules delivery attempts,
retries per preset, expires, bounces, holds and releases.

Every transition is an event.  The manager builds the events, folds them
into :class:`~mta.queue.state.QueueState`, reports them to the host's sink
and writes them to its store; after a crash, replaying the store rebuilds
the state and the manager carries on (interrupted attempts are retried).

Times: event stamps and every time kept in the state are ``ctx.now()``;
timers are set on ``loop.time()`` as "this many seconds from now", so a
live restart (a new monotonic clock) keeps the schedule.

The manager implements the receiving server's ``MessageSink`` (``accept``)
and the ETRN/finger ``ReleaseTarget`` (``held_count``, ``release``), plus
``submit`` for mail that enters without SMTP (traffic sources, DSNs).

This module holds the public class and its entry points (lifecycle,
accept/submit, release/flush/discard); the timers are in
:mod:`mta.queue.scheduling` and the delivery rounds with the recording of
their outcomes in :mod:`mta.queue.rounds`, as mixins.
"""
from __future__ import annotations

import asyncio

from mta import events as ev
from mta.context import HostContext
from mta.delivery.client import Deliverer, DeliveryConfig
from mta.queue.mailbox import Mailboxes
from mta.queue.policy import QueueConfig, QueuePolicy
from mta.queue.message import ensure_message_id
from mta.queue.rounds import HELD_EXPIRED, DeliveryRoundsMixin  # noqa: F401 - HELD_EXPIRED re-exported
from mta.queue.scheduling import SchedulingMixin
from mta.queue.state import QueueState, RcptState, domain_of
from mta.queue.store import QueueStore


class QueueManager(SchedulingMixin, DeliveryRoundsMixin):
    """One host's mail queue (see the module docstring)."""

    def __init__(self, ctx: HostContext, store: QueueStore, config: QueueConfig | None = None,
                 delivery: DeliveryConfig | None = None, mailboxes: Mailboxes | None = None) -> None:
        self.ctx = ctx
        self.store = store
        self.config = config or QueueConfig()
        self.deliverer = Deliverer(ctx, delivery)
        self.mailboxes = mailboxes if mailboxes is not None else Mailboxes()
        self.state = QueueState()
        self.policy = QueuePolicy(self.config)
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: dict[int, asyncio.Task] = {}
        self._task_seq = 0
        self._busy: set[tuple[str, str]] = set()   # (msg, rcpt) claimed by a running task
        self._epoch = 0                              # bumped by crash(): stale tasks stop touching state
        self._sem = asyncio.Semaphore(self.config.max_deliveries)

    # ------------------------------------------------------------------
    # lifecycle
    async def start(self, restarted: bool | None = None) -> int:
        """Recover from the store and schedule everything; returns the number
        of messages recovered.  Emits HostRestarted when ``restarted`` (or,
        when not given, when the store held any message)."""
        rec = self.store.load()
        self.state = QueueState().replay(rec.events)
        self.state.finished.clear()
        ids = self.ctx._ids   # keep queue IDs unique across restarts
        ids["m"] = max(ids.get("m", 0), rec.id_high)
        for msg in list(self.state.messages):
            self._schedule(msg)
        n = len(self.state.messages)
        if restarted or (restarted is None and n > 0):
            self._emit([ev.HostRestarted(t=self.ctx.now(), host=self.ctx.hostname, recovered=n)])
        return n

    def crash(self) -> None:
        """Simulated crash: lose everything but the store's durable part."""
        self._epoch += 1
        self._emit([ev.HostCrashed(t=self.ctx.now(), host=self.ctx.hostname)])
        for h in self._timers.values():
            h.cancel()
        self._timers.clear()
        for k in sorted(self._tasks):
            self._tasks[k].cancel()
        self._tasks.clear()
        self.deliverer.close()
        self.store.crash()
        self.state = QueueState()
        self._busy.clear()
        self._sem = asyncio.Semaphore(self.config.max_deliveries)

    async def restart(self) -> int:
        """Come back after :meth:`crash`: replay the store and resume."""
        return await self.start(restarted=True)

    async def close(self) -> None:
        """Stop timers and tasks (no crash event), drop idle connections."""
        self._epoch += 1          # cancelled tasks must not schedule anything new
        for h in self._timers.values():
            h.cancel()
        self._timers.clear()
        tasks = [self._tasks[k] for k in sorted(self._tasks)]
        for t in tasks:
            t.cancel()
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

    def _queued_events(self, msg: str, trace: str, rcpts: list[str], now: float) -> list[ev.Event]:
        out: list[ev.Event] = []
        for r in dict.fromkeys(rcpts):          # each recipient once, in order
            d = domain_of(r)
            out.append(ev.Queued(t=now, host=self.ctx.hostname, msg=msg, trace=trace, rcpt=r,
                                 domain=d, held=self.policy.held(d)))
        return out

    async def _enqueue(self, first: ev.Event, rcpts: list[str], data: bytes) -> None:
        msg, trace = first.msg, first.trace  # type: ignore[attr-defined]
        if not rcpts:
            # A message with no recipient would never reach a final state:
            # it would sit in the queue (and the store) for ever.
            raise ValueError(f"{msg}: no recipients to queue")
        events = [first] + self._queued_events(msg, trace, rcpts, first.t)
        epoch = self._epoch
        # Durable first, then visible: acknowledged means on disk.
        durable = self.store.write(events, {msg: data}, id_high=self._id_number(msg))
        try:
            # Shielded: if the caller is cancelled (the SMTP client went away
            # during the commit) the batch still reaches the disk, and then
            # the message is ours and must be queued here too, not only found
            # again at the next restart.
            await asyncio.shield(durable)
        except asyncio.CancelledError:
            durable.add_done_callback(lambda f: self._committed_anyway(f, epoch, events, msg))
            raise
        if epoch != self._epoch:
            raise RuntimeError("host crashed before the message was durable")
        self._apply(events)
        self._schedule(msg)

    def _committed_anyway(self, fut: asyncio.Future, epoch: int, events: list[ev.Event],
                          msg: str) -> None:
        """The batch of an abandoned acceptance became durable: queue it
        (the client saw no 250 and may send it again: a duplicate, not a loss)."""
        if fut.cancelled() or fut.exception() is not None or epoch != self._epoch:
            return
        self._apply(events)
        self._schedule(msg)

    @staticmethod
    def _id_number(msg: str) -> int:
        tail = msg.rpartition("/")[2].lstrip("m")
        return int(tail) if tail.isdigit() else 0

    # -- ReleaseTarget ----------------------------------------------------
    def _held(self, domain: str, include_subdomains: bool) -> dict[str, list[RcptState]]:
        domain = domain.lower().rstrip(".")
        out: dict[str, list[RcptState]] = {}
        for m in self.state.messages.values():
            rs = [r for r in m.rcpts.values()
                  if r.held and (m.msg, r.rcpt) not in self._busy
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
        self._emit([ev.Released(t=self.ctx.now(), host=self.ctx.hostname, domain=domain,
                                trigger=trigger, count=len(held), client_ip=client_ip)])
        return len(held)

    def flush(self) -> int:
        """Retry every deferred, not held recipient now (``postqueue -f``)."""
        n = 0
        for m in list(self.state.messages.values()):
            rs = [r for r in m.rcpts.values() if not r.held and (m.msg, r.rcpt) not in self._busy]
            if rs:
                n += 1
                self._start(m, rs)
        return n

    async def discard(self, msg: str, rcpt: str, policy: str, reason: str) -> None:
        """Delete one recipient's copy on purpose (virus, spam delete)."""
        m = self.state.messages[msg]
        await self._commit([ev.Discarded(t=self.ctx.now(), host=self.ctx.hostname, msg=msg,
                                         trace=m.trace, rcpt=rcpt, policy=policy, reason=reason)])

