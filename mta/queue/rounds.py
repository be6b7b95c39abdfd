"""Queue delivery rounds: the tasks that hand recipients to the next hop.

:class:`Rounds` claims due recipients, runs one task per (message, domain)
round through the Deliverer (or into the host's local mailboxes), and
records what came back in one batch: the events are decided by
:func:`mta.queue.outcomes.settle` and :func:`mta.queue.outcomes.bounce_events`,
and written through the :class:`~mta.queue.runtime.Journal`.  It also bounces
held mail that expired.  After every round ``after(msg)`` lets the manager
set the message's next timer.
"""
from __future__ import annotations

import asyncio
from typing import Any, Callable

from mta import events as ev
from mta.context import HostContext
from mta.delivery.client import BOUNCED, DEFERRED, Deliverer, RcptOutcome
from mta.delivery.routing import Destination
from mta.mailbox import Deflated, MailboxStore
from mta.queue.outcomes import Failure, bounce_events, expiry_failures, round_failed, settle, wants_dsn
from mta.queue.policy import QueuePolicy
from mta.queue.runtime import Journal, QueueRuntime
from mta.queue.scheduling import host_gate
from mta.queue.state import MessageState, RcptState
from mta.queue.store import QueueStore


class Rounds:
    """Delivery and expiry tasks of one queue (see the module docstring)."""

    def __init__(self, ctx: HostContext, runtime: QueueRuntime, store: QueueStore,
                 journal: Journal, deliverer: Deliverer, mailboxes: MailboxStore,
                 policy: QueuePolicy, after: Callable[[str], None]) -> None:
        self.ctx = ctx
        self.runtime = runtime
        self.store = store
        self.journal = journal
        self.deliverer = deliverer
        self.mailboxes = mailboxes
        self.policy = policy
        self.after = after
        self._tasks: dict[int, asyncio.Task] = {}
        self._task_seq = 0
        self._sem = asyncio.Semaphore(policy.config.max_deliveries)

    # -- tasks -----------------------------------------------------------
    def start(self, m: MessageState, rcpts: list[RcptState]) -> None:
        """Claim ``rcpts`` and start one delivery task per domain."""
        self.runtime.claim(m.msg, [r.rcpt for r in rcpts])
        by_domain: dict[str, list[RcptState]] = {}
        for r in rcpts:
            by_domain.setdefault(r.domain, []).append(r)
        for domain, rs in by_domain.items():
            self.spawn(self._deliver(m.msg, domain, [r.rcpt for r in rs]))

    def expire(self, m: MessageState, rcpts: list[RcptState]) -> None:
        """Claim held ``rcpts`` past their lifetime and bounce them in a task."""
        self.runtime.claim(m.msg, [r.rcpt for r in rcpts])
        self.spawn(self._expire(m, rcpts))

    def spawn(self, coro: Any) -> None:
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

    def abandon(self) -> list[asyncio.Task]:
        """Cancel every task, oldest first (crash or stop); returns them."""
        tasks = [self._tasks[k] for k in sorted(self._tasks)]
        for t in tasks:
            t.cancel()
        self._tasks.clear()
        return tasks

    def reset(self) -> None:
        """A fresh concurrency bound (after a crash, nobody holds the old one)."""
        self._sem = asyncio.Semaphore(self.policy.config.max_deliveries)

    # -- one round -------------------------------------------------------
    async def _deliver(self, msg: str, domain: str, claimed: list[str]) -> None:
        rt = self.runtime
        rcpts = claimed
        with rt.holding(msg, claimed, self.after) as held:
            async with self._sem:       # bounds concurrent SMTP transactions, not commits
                m = rt.state.messages.get(msg)
                if m is None or not held.current:
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
                        if not held.current:
                            return
                        # Reported and folded, not stored: after a crash an
                        # interrupted attempt is simply due again, which is
                        # what replaying the stored events gives anyway.
                        self.journal.apply([ev.AttemptStarted(
                            t=self.ctx.now(), host=self.ctx.hostname, msg=msg, trace=m.trace,
                            rcpts=tuple(pending), dest_host=dest.host, dest_ip=dest.ip,
                            preference=dest.preference, attempt=attempt)])

                    gate = host_gate(m, domain, self.policy, self.ctx.now())
                    if gate is not None:  # Exim: the destination's retry time rules
                        status = DEFERRED if gate[0] < 500 else BOUNCED
                        outcomes = [RcptOutcome(r, status, *gate) for r in rcpts]
                    else:
                        try:
                            outcomes = await self.deliverer.deliver(
                                mail_from=m.mail_from, rcpts=rcpts, data=data, domain=domain,
                                on_attempt=on_attempt)
                        except Exception as exc:  # noqa: BLE001 - reported here, never swallowed
                            # Report it (a simulated run stops here); the
                            # recipients then follow their retry schedule.
                            asyncio.get_running_loop().call_exception_handler(
                                {"message": "delivery round failed", "exception": exc})
                            outcomes = round_failed(rcpts, exc)
            if not held.current:
                return
            # Waiting for the disk happens outside the semaphore, so the next
            # transaction can start meanwhile (the commit is shared anyway).
            if outcomes is None:
                await self.journal.commit(events)
            else:
                now = self.ctx.now()
                settled = settle(m, outcomes, host=self.ctx.hostname, now=now, policy=self.policy)
                events, bodies = settled.events, {}
                if settled.failed:
                    more, bodies = self.bounce(m, settled.failed, now)
                    events.extend(more)
                await self.journal.commit(events, bodies)

    def _deliver_local(self, m: MessageState, rcpts: list[str], data: bytes) -> list[ev.Event]:
        """Final delivery into this host's mailboxes; the events to record."""
        events: list[ev.Event] = []
        body = Deflated.of(data)      # one copy for every recipient here
        for r in rcpts:
            box = self.mailboxes.file(m.msg, m.trace, m.mail_from, r, body)
            events.append(ev.DeliveredToMailbox(t=self.ctx.now(), host=self.ctx.hostname,
                                                msg=m.msg, trace=m.trace, rcpt=r, mailbox=box))
        return events

    async def _expire(self, m: MessageState, rcpts: list[RcptState]) -> None:
        with self.runtime.holding(m.msg, [r.rcpt for r in rcpts]):
            events, bodies = self.bounce(m, expiry_failures(rcpts), self.ctx.now())
            await self.journal.commit(events, bodies)

    def bounce(self, m: MessageState, failed: list[Failure], now: float
               ) -> tuple[list[ev.Event], dict[str, bytes]]:
        """Give up ``failed``: the DSN's ID and the original's bytes are read here."""
        if not wants_dsn(m):
            return bounce_events(m, failed, host=self.ctx.hostname, dsn_id="", original=b"",
                                 now=now, held=self.policy.held)
        return bounce_events(m, failed, host=self.ctx.hostname, dsn_id=self.ctx.next_id("m"),
                             original=self.store.body(m.msg), now=now, held=self.policy.held)
