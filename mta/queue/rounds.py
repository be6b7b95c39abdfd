"""Queue delivery rounds and outcome recording.

:class:`DeliveryRoundsMixin` is the delivery half of
:class:`mta.queue.manager.QueueManager`: it claims due recipients, runs one
task per (message, domain) round through the Deliverer (or into local
mailboxes), turns each transaction's per-recipient outcomes into Relayed /
Deferred / Bounced events in one batch, bounces expired held mail, and
records every batch: folded into the state, reported to the sink, written
to the store (DSNs scheduled only once their batch is durable).
"""
from __future__ import annotations

import asyncio
from typing import Any

from mta import events as ev
from mta.delivery.client import BOUNCED, DEFERRED, RELAYED, Destination, RcptOutcome
from mta.queue.bounces import Failure, bounce_events
from mta.queue.state import MessageState, RcptState

#: Reply recorded when held mail expires without ever being released.
HELD_EXPIRED = (421, "4.4.7 Held for the domain and not released within the queue lifetime")


class DeliveryRoundsMixin:
    """Delivery tasks, outcomes and the event recording of the queue manager
    (state, store, deliverer and timers live on the QueueManager)."""

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
