"""The queue's state as the fold of its events (eventsourcing style).

The queue never changes its state directly: every transition is an event
(:mod:`mta.events`), and :meth:`QueueState.apply` folds one event into the
state with one small function per event kind.  Replaying a store's events
in order through :meth:`QueueState.apply` rebuilds exactly the state the
queue had, which is how a host recovers after a crash.

Times in the state are event times (``ctx.now()``), never ``loop.time()``:
they must mean the same thing after a restart, when a live process has a
new monotonic clock.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from mta import events as ev


@dataclass
class RcptState:
    """One recipient of one queued message, still awaiting its fate."""

    rcpt: str
    domain: str
    held: bool = False
    attempts: int = 0            # delivery rounds started (AttemptStarted.attempt)
    failures: int = 0            # rounds that ended deferred (the retry schedule's count)
    first_failure: float | None = None
    next_attempt: float = 0.0    # event time the next round is due
    in_flight: bool = False      # an attempt started and has no outcome yet
    last_code: int = 0
    last_text: str = ""
    last_dest: str = ""


@dataclass
class MessageState:
    """A queued message: envelope facts plus its recipients still pending."""

    msg: str
    trace: str
    mail_from: str
    size: int
    queued_at: float
    origin: str                  # "smtp", "local", "dsn"...
    rcpts: dict[str, RcptState] = field(default_factory=dict)
    warned: bool = False         # a delay-warning DSN went out
    filtered: bool = False       # the content filter finished (FilterVerdict.complete)


class QueueState:
    """Every message still in the queue of one host.

    ``finished`` collects the IDs of messages whose last recipient reached a
    final state during the last :meth:`apply` calls; the journal
    (:class:`mta.queue.runtime.Journal`) drains it to tell the store it may
    forget them.
    """

    def __init__(self) -> None:
        self.messages: dict[str, MessageState] = {}
        self.warned_traces: set[str] = set()
        self.finished: list[str] = []

    # ------------------------------------------------------------------
    def apply(self, event: ev.Event) -> None:
        """Fold one event; events of kinds the queue does not track are ignored."""
        fn = _FOLDS.get(type(event))
        if fn is not None:
            fn(self, event)

    def replay(self, events: list[ev.Event]) -> "QueueState":
        for e in events:
            self.apply(e)
        return self

    def pending(self) -> int:
        """Recipients still queued, over all messages."""
        return sum(len(m.rcpts) for m in self.messages.values())

    # ------------------------------------------------------------------
    def _rcpt(self, msg: str, rcpt: str) -> RcptState | None:
        m = self.messages.get(msg)
        return None if m is None else m.rcpts.get(rcpt)

    def _final(self, msg: str, rcpt: str) -> None:
        m = self.messages.get(msg)
        if m is None or rcpt not in m.rcpts:
            return
        del m.rcpts[rcpt]
        if not m.rcpts:
            del self.messages[msg]
            self.finished.append(msg)


def domain_of(addr: str) -> str:
    """The lower-cased domain of an address (``""`` for ``<>`` or no @)."""
    return addr.rpartition("@")[2].lower() if "@" in addr else ""


# -- one fold function per event kind -----------------------------------

def _accepted(s: QueueState, e: ev.MessageAccepted) -> None:
    s.messages[e.msg] = MessageState(e.msg, e.trace, e.mail_from, e.size, e.t, "smtp")


def _submitted(s: QueueState, e: ev.MessageSubmitted) -> None:
    s.messages[e.msg] = MessageState(e.msg, e.trace, e.mail_from, e.size, e.t, e.origin)


def _queued(s: QueueState, e: ev.Queued) -> None:
    m = s.messages.get(e.msg)
    if m is not None:
        m.rcpts[e.rcpt] = RcptState(e.rcpt, e.domain, held=e.held, next_attempt=e.t)


def _attempt(s: QueueState, e: ev.AttemptStarted) -> None:
    for r in e.rcpts:
        st = s._rcpt(e.msg, r)
        if st is not None:
            st.attempts = max(st.attempts, e.attempt)
            st.in_flight = True
            st.last_dest = e.dest_host


def _deferred(s: QueueState, e: ev.Deferred) -> None:
    st = s._rcpt(e.msg, e.rcpt)
    if st is not None:
        st.in_flight = False
        st.failures += 1
        if st.first_failure is None:
            st.first_failure = e.t
        st.next_attempt = e.next_attempt
        st.last_code, st.last_text = e.code, e.text
        if e.dest_host:
            st.last_dest = e.dest_host


def _final_relayed(s: QueueState, e: ev.Relayed) -> None:
    s._final(e.msg, e.rcpt)


def _final_mailbox(s: QueueState, e: ev.DeliveredToMailbox) -> None:
    s._final(e.msg, e.rcpt)


def _final_bounced(s: QueueState, e: ev.Bounced) -> None:
    s._final(e.msg, e.rcpt)


def _final_discarded(s: QueueState, e: ev.Discarded) -> None:
    s._final(e.msg, e.rcpt)


def _dsn_created(s: QueueState, e: ev.DsnCreated) -> None:
    # A delay warning is sent once per message: remember which were warned.
    if e.action == "delayed":
        s.warned_traces.add(e.about_trace)
        for m in s.messages.values():
            if m.trace == e.about_trace:
                m.warned = True


def _filter_verdict(s: QueueState, e: ev.FilterVerdict) -> None:
    # Only a finished chain run counts: after a crash, or after a scanner
    # error, the message is filtered again before it may be delivered.
    m = s.messages.get(e.msg)
    if m is not None and e.complete:
        m.filtered = True


def _released(s: QueueState, e: ev.Released) -> None:
    # Release is a trigger, not a state change: held recipients stay held
    # (their domain's policy holds them) and the AttemptStarted events that
    # follow the release record the delivery it started.
    return None


_FOLDS: dict[type, Callable[[QueueState, ev.Event], None]] = {
    ev.MessageAccepted: _accepted,
    ev.MessageSubmitted: _submitted,
    ev.Queued: _queued,
    ev.AttemptStarted: _attempt,
    ev.Deferred: _deferred,
    ev.Relayed: _final_relayed,
    ev.DeliveredToMailbox: _final_mailbox,
    ev.Bounced: _final_bounced,
    ev.Discarded: _final_discarded,
    ev.DsnCreated: _dsn_created,
    ev.Released: _released,
    ev.FilterVerdict: _filter_verdict,
}

#: The event kinds that describe a queue transition (what a store persists).
QUEUE_EVENTS: tuple[type, ...] = tuple(_FOLDS)
