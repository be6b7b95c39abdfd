"""Bounces and delay warnings: the events and DSN bodies a give-up produces.

One give-up (the recipients of one message that failed together) gives
``Bounced`` per recipient and, unless the message's own sender was ``<>``
(RFC 5321 §4.5.5), one RFC 3464 DSN: ``DsnCreated`` plus the events that
queue it as a new message from ``<>`` to the sender (``MessageSubmitted``,
``Queued``), to be recorded in the same batch as the bounces so that a
crash can never keep one without the other.
"""
from __future__ import annotations

from typing import Callable

from mta import events as ev
from mta.context import HostContext
from mta.delivery.dsn import ACTION_FAILED, CONTENT_TYPE, RecipientStatus, build_dsn
from mta.queue.state import MessageState

#: (rcpt, code, text, reason, remote host) of one recipient given up.
Failure = tuple[str, int, str, str, str]
QueuedEvents = Callable[[str, str, list[str], float], list[ev.Event]]


def dsn_events(ctx: HostContext, m: MessageState, action: str, recipients: list[RecipientStatus],
               original: bytes, now: float, queued: QueuedEvents,
               retry_until: float | None = None) -> tuple[list[ev.Event], dict[str, bytes], str]:
    """Build a DSN about ``m``: (events that create and queue it, its body, its trace)."""
    host = ctx.hostname
    dsn_id = ctx.next_id("m")
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
    events += queued(dsn_id, dsn_trace, [m.mail_from], now)
    return events, {dsn_id: body}, dsn_trace


def bounce_events(ctx: HostContext, m: MessageState, failed: list[Failure], original: bytes,
                  now: float, queued: QueuedEvents) -> tuple[list[ev.Event], dict[str, bytes]]:
    """``Bounced`` for each failure plus one DSN to a non-null sender."""
    dsn: list[ev.Event] = []
    bodies: dict[str, bytes] = {}
    dsn_trace = ""
    if m.mail_from != "":        # never a DSN about a message from <> (a DSN itself)
        statuses = [RecipientStatus(rcpt, code, text, remote) for rcpt, code, text, _, remote in failed]
        dsn, bodies, dsn_trace = dsn_events(ctx, m, ACTION_FAILED, statuses, original, now, queued)
    bounced: list[ev.Event] = [
        ev.Bounced(t=now, host=ctx.hostname, msg=m.msg, trace=m.trace, rcpt=rcpt, code=code,
                   text=text, reason=reason, dsn_trace=dsn_trace)
        for rcpt, code, text, reason, _ in failed]
    return bounced + dsn, bodies
