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
"""
from __future__ import annotations

import asyncio
from typing import Any

from mta import events as ev
from mta.context import HostContext
from mta.delivery import BOUNCED, DEFERRED, RELAYED, Deliverer, DeliveryConfig, Destination, RcptOutcome
from mta.dsn import ACTION_DELAYED, RecipientStatus
from mta.queue.bounces import Failure, bounce_events, dsn_events
from mta.queue.mailbox import Mailboxes
from mta.queue.policy import QueueConfig, QueuePolicy
from mta.queue.message import ensure_message_id
from mta.queue.state import MessageState, QueueState, RcptState, domain_of
from mta.queue.store import QueueStore

#: Reply recorded when held mail expires without ever being released.
HELD_EXPIRED = (421, "4.4.7 Held for the domain and not released within the queue lifetime")


class QueueManager:
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

    # ------------------------------------------------------------------
    # schedules
    def schedule_for(self, domain: str) -> Any:
        """The retry schedule for ``domain`` (see :class:`QueuePolicy`)."""
        return self.policy.schedule_for(domain)

    def _expires(self, m: MessageState, r: RcptState) -> float:
        return m.queued_at + self.schedule_for(r.domain).lifetime

    def _warn_at(self, m: MessageState) -> float | None:
        if not self.config.delay_warnings or m.warned or m.mail_from == "" or m.origin == "dsn":
            return None
        times = [getattr(self.schedule_for(r.domain), "delay_warning", None) for r in m.rcpts.values()]
        times = [t for t in times if t]
        return m.queued_at + min(times) if times else None

    def _due(self, m: MessageState) -> float | None:
        due: list[float] = []
        for r in m.rcpts.values():
            if (m.msg, r.rcpt) in self._busy:
                continue
            if r.in_flight:              # interrupted by a crash: retry at once
                due.append(self.ctx.now())
            elif r.held:
                due.append(self._expires(m, r))
            else:
                due.append(r.next_attempt)
        w = self._warn_at(m)
        if w is not None and due and any(r.held or r.failures > 0 for r in m.rcpts.values()):
            due.append(w)
        return min(due) if due else None

    def _schedule(self, msg: str) -> None:
        old = self._timers.pop(msg, None)
        if old is not None:
            old.cancel()
        m = self.state.messages.get(msg)
        if m is None:
            return
        due = self._due(m)
        if due is None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, due - self.ctx.now())
        self._timers[msg] = loop.call_at(loop.time() + delay, self._fire, msg)

    def _fire(self, msg: str) -> None:
        self._timers.pop(msg, None)
        m = self.state.messages.get(msg)
        if m is None:
            return
        now = self.ctx.now()
        due: list[RcptState] = []
        expired: list[RcptState] = []
        for r in m.rcpts.values():
            if (m.msg, r.rcpt) in self._busy:
                continue
            if r.in_flight or (not r.held and r.next_attempt <= now):
                due.append(r)
            elif r.held and now >= self._expires(m, r):
                expired.append(r)
        w = self._warn_at(m)
        if w is not None and now >= w:
            waiting = [r for r in m.rcpts.values() if r.held or r.failures > 0]
            if waiting:
                # Synchronously, so the warning is folded (m.warned) before
                # the next timer is computed below.
                self._warn(m, waiting)
        if expired:
            for r in expired:
                self._busy.add((m.msg, r.rcpt))
            self._spawn(self._expire(m, expired))
        if due:
            self._start(m, due)
        self._schedule(msg)

    # ------------------------------------------------------------------
    # delivery
    def _start(self, m: MessageState, rcpts: list[RcptState]) -> None:
        """Claim ``rcpts`` and start one delivery task per domain."""
        by_domain: dict[str, list[RcptState]] = {}
        for r in rcpts:
            self._busy.add((m.msg, r.rcpt))
            by_domain.setdefault(r.domain, []).append(r)
        for domain, rs in by_domain.items():
            self._spawn(self._deliver(m.msg, domain, [r.rcpt for r in rs]))
        old = self._timers.pop(m.msg, None)
        if old is not None:
            old.cancel()

    def _spawn(self, coro: Any) -> None:
        loop = asyncio.get_running_loop()
        self._task_seq += 1
        key = self._task_seq
        task = loop.create_task(coro)
        self._tasks[key] = task

        def done(t: asyncio.Task, key: int = key) -> None:
            self._tasks.pop(key, None)
            if not t.cancelled() and t.exception() is not None:
                # Surface component bugs (the simulated world fails the run).
                loop.call_exception_handler({"message": "queue task failed",
                                             "exception": t.exception(), "task": t})
        task.add_done_callback(done)

    async def _deliver(self, msg: str, domain: str, claimed: list[str]) -> None:
        epoch = self._epoch
        rcpts = claimed
        try:
            async with self._sem:       # bounds concurrent SMTP transactions, not commits
                m = self.state.messages.get(msg)
                if m is None or epoch != self._epoch:
                    return
                rcpts = [r for r in rcpts if r in m.rcpts]   # some may be discarded meanwhile
                if not rcpts:
                    return
                data = self.store.body(msg)
                if self.policy.local(domain):
                    outcomes = None
                    events = self._deliver_local(m, rcpts, data)
                else:
                    attempt = 1 + max(m.rcpts[r].failures for r in rcpts)

                    def on_attempt(dest: Destination, pending: list[str]) -> None:
                        if epoch != self._epoch:
                            return
                        # Reported and folded, not stored: after a crash an
                        # interrupted attempt is simply due again, which is
                        # what replaying the stored events gives anyway.
                        self._apply([ev.AttemptStarted(
                            t=self.ctx.now(), host=self.ctx.hostname, msg=msg, trace=m.trace,
                            rcpts=tuple(pending), dest_host=dest.host, dest_ip=dest.ip,
                            preference=dest.preference, attempt=attempt)])

                    try:
                        outcomes = await self.deliverer.deliver(mail_from=m.mail_from, rcpts=rcpts,
                                                                data=data, domain=domain,
                                                                on_attempt=on_attempt)
                    except Exception as exc:  # noqa: BLE001 - reported below, never swallowed
                        outcomes = self._round_failed(rcpts, exc)
            if epoch != self._epoch:
                return
            # Waiting for the disk happens outside the semaphore, so the next
            # transaction can start meanwhile (the commit is shared anyway).
            if outcomes is None:
                await self._commit(events)
            else:
                await self._outcomes(m, outcomes)
        except GeneratorExit:     # the loop is gone (world torn down): touch nothing
            epoch = -1
            raise
        finally:
            if epoch == self._epoch:
                for r in claimed:
                    self._busy.discard((msg, r))
                self._schedule(msg)

    @staticmethod
    def _round_failed(rcpts: list[str], exc: Exception) -> list[RcptOutcome]:
        """A delivery round raised (our bug, or a reply nothing foresaw).

        Report it (a simulated run stops here) and count the round as a
        transient failure, so the recipients follow their retry schedule:
        without this, a live queue would retry at once, for ever.
        """
        asyncio.get_running_loop().call_exception_handler(
            {"message": "delivery round failed", "exception": exc})
        text = f"4.3.0 Internal error during delivery ({type(exc).__name__})"
        return [RcptOutcome(rcpt=r, status=DEFERRED, code=451, text=text) for r in rcpts]

    def _deliver_local(self, m: MessageState, rcpts: list[str], data: bytes) -> list[ev.Event]:
        """Final delivery into this host's mailboxes; the events to record."""
        events: list[ev.Event] = []
        for r in rcpts:
            box = self.mailboxes.deliver(r, data)
            events.append(ev.DeliveredToMailbox(t=self.ctx.now(), host=self.ctx.hostname,
                                                msg=m.msg, trace=m.trace, rcpt=r, mailbox=box))
        return events

    async def _outcomes(self, m: MessageState, outcomes: list[RcptOutcome]) -> None:
        """Record one transaction's per-recipient results in one batch."""
        now = self.ctx.now()
        host = self.ctx.hostname
        events: list[ev.Event] = []
        failed: list[Failure] = []
        for o in outcomes:
            r = m.rcpts.get(o.rcpt)
            if r is None:         # discarded while the transaction ran: its fate is recorded
                continue
            if o.status == RELAYED:
                events.append(ev.Relayed(t=now, host=host, msg=m.msg, trace=m.trace, rcpt=o.rcpt,
                                         dest_host=o.dest_host, dest_ip=o.dest_ip,
                                         code=o.code, text=o.text))
            elif o.status == BOUNCED:
                reason = ("null-mx" if o.code == 556 else "rejected" if o.dest_host else "unroutable")
                failed.append((o.rcpt, o.code, o.text, reason, o.dest_host))
            else:
                sched = self.schedule_for(r.domain)
                first = r.first_failure if r.first_failure is not None else now
                nxt = sched.next_attempt(m.queued_at, first, now, r.failures + 1)
                if nxt is None:
                    failed.append((o.rcpt, o.code, o.text, "expired", o.dest_host))
                else:
                    events.append(ev.Deferred(t=now, host=host, msg=m.msg, trace=m.trace,
                                              rcpt=o.rcpt, code=o.code, text=o.text,
                                              next_attempt=nxt, dest_host=o.dest_host))
        bodies: dict[str, bytes] = {}
        if failed:
            more, bodies = self._bounce(m, failed, now)
            events.extend(more)
        await self._commit(events, bodies)

    async def _expire(self, m: MessageState, rcpts: list[RcptState]) -> None:
        epoch = self._epoch
        try:
            failed = [(r.rcpt, r.last_code or HELD_EXPIRED[0], r.last_text or HELD_EXPIRED[1],
                       "expired", r.last_dest) for r in rcpts]
            events, bodies = self._bounce(m, failed, self.ctx.now())
            await self._commit(events, bodies)
        except GeneratorExit:
            epoch = -1
            raise
        finally:
            if epoch == self._epoch:
                for r in rcpts:
                    self._busy.discard((m.msg, r.rcpt))

    # ------------------------------------------------------------------
    # bounces and warnings (built by mta.queue.bounces)
    def _bounce(self, m: MessageState, failed: list[Failure], now: float
                ) -> tuple[list[ev.Event], dict[str, bytes]]:
        return bounce_events(self.ctx, m, failed, self.store.body(m.msg), now, self._queued_events)

    def _warn(self, m: MessageState, waiting: list[RcptState]) -> None:
        now = self.ctx.now()
        statuses = [RecipientStatus(r.rcpt, r.last_code or 421,
                                    r.last_text or "4.4.7 Delivery delayed", r.last_dest)
                    for r in waiting]
        until = min(self._expires(m, r) for r in waiting)
        events, bodies, _ = dsn_events(self.ctx, m, ACTION_DELAYED, statuses, self.store.body(m.msg),
                                       now, self._queued_events, retry_until=until)
        self._record(events, bodies)

    # ------------------------------------------------------------------
    # recording
    def _apply(self, events: list[ev.Event]) -> None:
        for e in events:
            self.state.apply(e)
            self.ctx.sink.emit(e)

    def _emit(self, events: list[ev.Event]) -> None:
        for e in events:
            self.ctx.sink.emit(e)

    def _record(self, events: list[ev.Event], bodies: dict[str, bytes] | None = None) -> asyncio.Future:
        """Fold, report and write ``events`` as one batch; schedule new messages."""
        self._apply(events)
        forget = tuple(self.state.finished)
        self.state.finished.clear()
        high = max((self._id_number(e.msg) for e in events if isinstance(e, ev.MessageSubmitted)),
                   default=0)
        fut = self.store.write(events, bodies, forget=forget, id_high=high)
        for msg in forget:
            t = self._timers.pop(msg, None)
            if t is not None:
                t.cancel()
        new = [e.msg for e in events if isinstance(e, ev.MessageSubmitted)]
        if new:
            # A DSN goes out only once the batch that creates it (with the
            # bounce it reports) is durable: a crash before that brings the
            # original recipients back, and they must not have been bounced.
            epoch = self._epoch

            def durable(f: asyncio.Future) -> None:
                # (A failed write is the awaiter's to report; the state says
                # bounced already, so the DSN still goes out.)
                if f.cancelled() or epoch != self._epoch:
                    return
                for msg in new:
                    self._schedule(msg)

            if fut.done():
                durable(fut)
            else:
                fut.add_done_callback(durable)
        return fut

    async def _commit(self, events: list[ev.Event], bodies: dict[str, bytes] | None = None) -> None:
        if events:
            await self._record(events, bodies)
