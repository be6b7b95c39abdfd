"""What events a delivery round's outcome produces: pure functions.

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

One give-up (the recipients of one message that failed together, or held
ones that expired: :func:`expiry_failures`) gives ``Bounced`` per recipient
and, unless the message's own sender was ``<>`` (RFC 5321 §4.5.5), one RFC
3464 DSN: ``DsnCreated`` plus the events that queue it as a new message
from ``<>`` to the sender (``MessageSubmitted``, ``Queued``), recorded in
the same batch as the bounces so that a crash can never keep one without
the other (:func:`bounce_events`).  A delay warning is a DSN too
(:func:`warning_events`).

The DSN's queue ID is allocated by the caller, only when :func:`wants_dsn`
says one goes out (so queue IDs stay as they were), and passed in with the
original message's bytes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

from mta import events as ev
from mta.delivery.client import BOUNCED, DEFERRED, RELAYED, RcptOutcome
from mta.delivery.dsn import ACTION_DELAYED, ACTION_FAILED, CONTENT_TYPE, RecipientStatus, build_dsn
from mta.queue.policy import QueuePolicy
from mta.queue.scheduling import FAILING_TOO_LONG, answered, frozen_until, retry_at
from mta.queue.state import MessageState, RcptState, domain_of

#: Reply recorded when held mail expires without ever being released.
HELD_EXPIRED = (421, "4.4.7 Held for the domain and not released within the queue lifetime")
#: Reply a delay warning reports for a recipient that has no reply yet (held).
NOT_YET = (421, "4.4.7 Delivery delayed")


class Failure(NamedTuple):
    """One recipient given up: the reply, why, and the remote host."""

    rcpt: str
    code: int
    text: str
    reason: str          # rejected / unroutable / null-mx / expired
    remote: str


def queued_events(host: str, msg: str, trace: str, rcpts: list[str], now: float,
                  held: Callable[[str], bool]) -> list[ev.Event]:
    """``Queued`` for each recipient once, in order; ``held(domain)`` says which wait."""
    out: list[ev.Event] = []
    for r in dict.fromkeys(rcpts):
        d = domain_of(r)
        out.append(ev.Queued(t=now, host=host, msg=msg, trace=trace, rcpt=r, domain=d, held=held(d)))
    return out


def wants_dsn(m: MessageState) -> bool:
    """A bounce of ``m`` sends a DSN: never about a message from ``<>`` (a DSN itself)."""
    return m.mail_from != ""


def expiry_failures(rcpts: list[RcptState]) -> list[Failure]:
    """Held recipients past their lifetime: the last reply they got, if any."""
    return [Failure(r.rcpt, r.last_code or HELD_EXPIRED[0], r.last_text or HELD_EXPIRED[1],
                    "expired", r.last_dest) for r in rcpts]


def dsn_events(m: MessageState, action: str, recipients: list[RecipientStatus], *, host: str,
               dsn_id: str, original: bytes, now: float, held: Callable[[str], bool],
               retry_until: float | None = None) -> tuple[list[ev.Event], dict[str, bytes], str]:
    """A DSN about ``m``: (events that create and queue it, its body, its trace)."""
    dsn_trace = f"{dsn_id.rpartition('/')[2]}@{host}"
    body = build_dsn(reporting_mta=host, dsn_id=dsn_id, message_id=dsn_trace, to=m.mail_from,
                     action=action, recipients=recipients, original=original,
                     arrival=m.queued_at, now=now, retry_until=retry_until)
    events: list[ev.Event] = [
        ev.DsnCreated(t=now, host=host, msg=dsn_id, trace=dsn_trace, about_trace=m.trace,
                      to=m.mail_from, rcpts=tuple(r.rcpt for r in recipients), action=action,
                      content_type=CONTENT_TYPE, mail_from=""),
        ev.MessageSubmitted(t=now, host=host, msg=dsn_id, trace=dsn_trace, mail_from="",
                            rcpts=(m.mail_from,), size=len(body), origin="dsn"),
    ]
    events += queued_events(host, dsn_id, dsn_trace, [m.mail_from], now, held)
    return events, {dsn_id: body}, dsn_trace


def bounce_events(m: MessageState, failed: list[Failure], *, host: str, dsn_id: str,
                  original: bytes, now: float, held: Callable[[str], bool]
                  ) -> tuple[list[ev.Event], dict[str, bytes]]:
    """``Bounced`` for each failure, then the DSN (if :func:`wants_dsn`; ``dsn_id`` is its ID)."""
    dsn: list[ev.Event] = []
    bodies: dict[str, bytes] = {}
    dsn_trace = ""
    if wants_dsn(m):
        statuses = [RecipientStatus(f.rcpt, f.code, f.text, f.remote) for f in failed]
        dsn, bodies, dsn_trace = dsn_events(m, ACTION_FAILED, statuses, host=host, dsn_id=dsn_id,
                                            original=original, now=now, held=held)
    bounced: list[ev.Event] = [
        ev.Bounced(t=now, host=host, msg=m.msg, trace=m.trace, rcpt=f.rcpt, code=f.code,
                   text=f.text, reason=f.reason, dsn_trace=dsn_trace)
        for f in failed]
    return bounced + dsn, bodies


def warning_events(m: MessageState, waiting: list[RcptState], *, host: str, dsn_id: str,
                   original: bytes, now: float, held: Callable[[str], bool],
                   retry_until: float) -> tuple[list[ev.Event], dict[str, bytes]]:
    """The delay-warning DSN about the ``waiting`` recipients of ``m``."""
    statuses = [RecipientStatus(r.rcpt, r.last_code or NOT_YET[0], r.last_text or NOT_YET[1],
                                r.last_dest) for r in waiting]
    events, bodies, _ = dsn_events(m, ACTION_DELAYED, statuses, host=host, dsn_id=dsn_id,
                                   original=original, now=now, held=held, retry_until=retry_until)
    return events, bodies


@dataclass(frozen=True)
class Settlement:
    """The events of one transaction's outcomes, and who was given up."""

    events: list[ev.Event]
    failed: list[Failure]


def bounce_reason(o: RcptOutcome) -> str:
    """Why a ``bounced`` outcome failed: ``null-mx``, ``rejected``, ``unroutable``,
    or ``expired`` (a destination failing past its retry rules' final cutoff)."""
    if (o.code, o.text) == FAILING_TOO_LONG:
        return "expired"
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
        if o.status != DEFERRED:
            answered(m, r, o, policy)
        if o.status == RELAYED:
            events.append(ev.Relayed(t=now, host=host, msg=m.msg, trace=m.trace, rcpt=o.rcpt,
                                     dest_host=o.dest_host, dest_ip=o.dest_ip,
                                     code=o.code, text=o.text))
        elif o.status == BOUNCED:
            thaw = frozen_until(m, r, policy, now)
            if thaw is None:
                failed.append(Failure(o.rcpt, o.code, o.text, bounce_reason(o), o.dest_host))
            else:  # a frozen bounce: kept, tried once more at ``thaw``
                events.append(ev.Deferred(t=now, host=host, msg=m.msg, trace=m.trace,
                                          rcpt=o.rcpt, code=o.code, text=o.text,
                                          next_attempt=thaw, dest_host=o.dest_host))
        else:
            nxt = retry_at(m, r, o, policy, now)
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
