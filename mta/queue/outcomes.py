"""What events a delivery round's outcome produces: a pure function.

The Deliverer answers one :class:`~mta.delivery.client.RcptOutcome` per
recipient; :func:`settle` turns a transaction's outcomes into the events
to record in one batch and the recipients given up:

* ``relayed`` -> ``Relayed``;
* ``deferred`` -> ``Deferred`` with the next attempt from the recipient's
  retry schedule, or given up as ``expired`` when the schedule has none
  left.  A held recipient (released by ETRN, finger or a probe) is held
  again after a deferral: the fold keeps ``held``, so it waits for the next
  release or its expiry, not for the retry time;
* ``bounced`` -> given up, as ``null-mx`` (556), ``rejected`` (a server
  said so) or ``unroutable`` (no server was reached).

Recipients given up become ``Bounced`` plus one DSN through
:func:`mta.queue.bounces.bounce_events`, in the same batch.
"""
from __future__ import annotations

from dataclasses import dataclass

from mta import events as ev
from mta.delivery.client import BOUNCED, DEFERRED, RELAYED, RcptOutcome
from mta.queue.bounces import Failure
from mta.queue.policy import QueuePolicy
from mta.queue.state import MessageState


@dataclass(frozen=True)
class Settlement:
    """The events of one transaction's outcomes, and who was given up."""

    events: list[ev.Event]
    failed: list[Failure]


def bounce_reason(o: RcptOutcome) -> str:
    """Why a ``bounced`` outcome failed: ``null-mx``, ``rejected`` or ``unroutable``."""
    return "null-mx" if o.code == 556 else "rejected" if o.dest_host else "unroutable"


def settle(m: MessageState, outcomes: list[RcptOutcome], *, host: str, now: float,
           policy: QueuePolicy) -> Settlement:
    """The events ``outcomes`` of one transaction about ``m`` produce (see
    the module docstring).  Recipients no longer in ``m`` (discarded while
    the transaction ran) are skipped: their fate is recorded already."""
    events: list[ev.Event] = []
    failed: list[Failure] = []
    for o in outcomes:
        r = m.rcpts.get(o.rcpt)
        if r is None:
            continue
        if o.status == RELAYED:
            events.append(ev.Relayed(t=now, host=host, msg=m.msg, trace=m.trace, rcpt=o.rcpt,
                                     dest_host=o.dest_host, dest_ip=o.dest_ip,
                                     code=o.code, text=o.text))
        elif o.status == BOUNCED:
            failed.append(Failure(o.rcpt, o.code, o.text, bounce_reason(o), o.dest_host))
        else:
            sched = policy.schedule_for(r.domain)
            first = r.first_failure if r.first_failure is not None else now
            nxt = sched.next_attempt(m.queued_at, first, now, r.failures + 1)
            if nxt is None:
                failed.append(Failure(o.rcpt, o.code, o.text, "expired", o.dest_host))
            else:
                events.append(ev.Deferred(t=now, host=host, msg=m.msg, trace=m.trace,
                                          rcpt=o.rcpt, code=o.code, text=o.text,
                                          next_attempt=nxt, dest_host=o.dest_host))
    return Settlement(events, failed)


def round_failed(rcpts: list[str], exc: Exception) -> list[RcptOutcome]:
    """The outcomes of a round that raised (our bug, or a reply nothing
    foresaw): a transient failure for each recipient, so they follow their
    retry schedule (without this a live queue would retry at once, for ever)."""
    text = f"4.3.0 Internal error during delivery ({type(exc).__name__})"
    return [RcptOutcome(rcpt=r, status=DEFERRED, code=451, text=text) for r in rcpts]
