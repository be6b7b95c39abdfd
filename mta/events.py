"""The facts a run records: one small frozen dataclass per kind of fact.

Every component reports what happens through an injected :class:`EventSink`
(``sink.emit(event)``); the event log of a run is the sequence of these
events, and every report and guarantee check is a projection of it.

Conventions shared by every event kind:

* ``t`` is the time in seconds: simulated time (``env.now``) in a simulated
  run, Unix time in a live one.  It is always the first field.
* ``host`` is the name of the host that observed the fact.
* ``msg`` is a queue ID, unique within a run across hosts (``host/N``).
  ``trace`` ties copies of one message across hops: it is the message's
  ``Message-ID`` header (the value between ``<`` and ``>``); a DSN gets a
  trace of its own and names the trace it reports on.
* ``rcpt`` is one envelope recipient, as given in ``RCPT TO`` (no brackets).
* ``conn`` is a connection ID, unique within a run (``host/cN``).

Events validate their fields on construction (the h11 style): an event that
could not have happened raises :class:`EventError`, which is our bug, not the
peer's.  ``to_dict`` / ``from_dict`` give the canonical mapping written to
``events.jsonl``; the ``kind`` key names the class.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol


class EventError(ValueError):
    """An event was built with fields that cannot describe a real fact."""


_KINDS: dict[str, type["Event"]] = {}


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every event kind.  Subclasses set ``kind`` and add fields."""

    t: float
    host: str

    kind: ClassVar[str] = ""

    def __init_subclass__(cls, **kw: Any) -> None:
        # No zero-argument super() here: slots=True rebuilds the class and
        # breaks its __class__ cell.  object.__init_subclass__ does nothing.
        if cls.kind:
            old = _KINDS.get(cls.kind)
            # dataclass(slots=True) rebuilds the class, so the same class
            # arrives twice; two different classes with one kind is a bug.
            if old is not None and old.__qualname__ != cls.__qualname__:
                raise TypeError(f"duplicate event kind {cls.kind!r}")
            _KINDS[cls.kind] = cls

    def __post_init__(self) -> None:
        if not isinstance(self.t, (int, float)) or self.t != self.t:
            raise EventError(f"{self.kind}: t must be a number, got {self.t!r}")
        if not self.host:
            raise EventError(f"{self.kind}: host must be named")
        self._validate()

    def _validate(self) -> None:
        """Kind-specific checks; subclasses override."""

    def to_dict(self) -> dict[str, Any]:
        """The canonical mapping: every field plus ``kind``; tuples become lists."""
        out: dict[str, Any] = {"kind": self.kind}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    @staticmethod
    def from_dict(data: dict[str, Any]) -> "Event":
        """Rebuild an event from :meth:`to_dict` output; raises EventError."""
        data = dict(data)
        kind = data.pop("kind", None)
        cls = _KINDS.get(kind)  # type: ignore[arg-type]
        if cls is None:
            raise EventError(f"unknown event kind {kind!r}")
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise EventError(f"{kind}: unknown fields {unknown}")
        for name, f in names.items():
            if name in data and isinstance(data[name], list):
                data[name] = tuple(data[name])
        try:
            return cls(**data)
        except TypeError as exc:
            raise EventError(f"{kind}: {exc}") from None


def event_kinds() -> dict[str, type[Event]]:
    """All registered event kinds by name (sorted, for stable iteration)."""
    return dict(sorted(_KINDS.items()))


class EventSink(Protocol):
    """Where components report facts.  ``emit`` must not block or fail."""

    def emit(self, event: Event) -> None: ...


class MemorySink:
    """Keeps events in a list, in emission order."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def of_kind(self, *classes: type[Event]) -> list[Event]:
        return [e for e in self.events if isinstance(e, classes)]


class NullSink:
    """Discards events (benchmarks of bare protocol cost)."""

    def emit(self, event: Event) -> None:
        pass


def _need(cond: bool, msg: str) -> None:
    if not cond:
        raise EventError(msg)


def _reply_code(kind: str, code: int) -> None:
    _need(isinstance(code, int) and 200 <= code <= 599, f"{kind}: bad reply code {code!r}")


# --------------------------------------------------------------------------
# Run and world
# --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RunStarted(Event):
    """First event of every run: what ran, with which seed."""

    scenario: str
    seed: int
    kind: ClassVar[str] = "run_started"


@dataclass(frozen=True, slots=True)
class RunEnded(Event):
    """Last event of every run: the simulation stopped at ``t``."""

    kind: ClassVar[str] = "run_ended"


@dataclass(frozen=True, slots=True)
class LinkUp(Event):
    """A host's link came up.  ``host`` is the host the link attaches."""

    link: str
    kind: ClassVar[str] = "link_up"


@dataclass(frozen=True, slots=True)
class LinkDown(Event):
    """A host's link went down."""

    link: str
    kind: ClassVar[str] = "link_down"


@dataclass(frozen=True, slots=True)
class HostCrashed(Event):
    """A host lost everything not on its (simulated) disk."""

    kind: ClassVar[str] = "host_crashed"


@dataclass(frozen=True, slots=True)
class HostRestarted(Event):
    """A host came back and recovered its queue from its store."""

    recovered: int = 0
    kind: ClassVar[str] = "host_restarted"


@dataclass(frozen=True, slots=True)
class ComponentError(Event):
    """An exception escaped component code.  A run with one of these fails."""

    where: str
    error: str
    kind: ClassVar[str] = "component_error"


# --------------------------------------------------------------------------
# Connections and the SMTP dialogue (server side unless stated)
# --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ConnectionOpened(Event):
    """A server accepted a TCP connection on ``port`` from ``client_ip``."""

    conn: str
    client_ip: str
    port: int
    service: str = "smtp"
    kind: ClassVar[str] = "connection_opened"


@dataclass(frozen=True, slots=True)
class ConnectionClosed(Event):
    """A server-side connection ended (``reason``: quit, timeout, reset...)."""

    conn: str
    reason: str = "closed"
    kind: ClassVar[str] = "connection_closed"


@dataclass(frozen=True, slots=True)
class SmtpReply(Event):
    """A server gave one reply.  Enough to rebuild the transaction log.

    ``command`` is the verb the reply answers (``CONNECT`` for the greeting,
    ``DATA_END`` for the reply after the final dot); ``stage`` names the
    policy stage that decided it, or ``""`` for protocol-level replies.
    ``helo``, ``mail_from`` and ``rcpts`` are the session state when the
    reply was given.
    """

    conn: str
    client_ip: str
    command: str
    argument: str
    code: int
    text: str
    helo: str = ""
    mail_from: str | None = None
    rcpts: tuple[str, ...] = ()
    stage: str = ""
    kind: ClassVar[str] = "smtp_reply"

    def _validate(self) -> None:
        _reply_code(self.kind, self.code)


@dataclass(frozen=True, slots=True)
class ConnectAttempt(Event):
    """A client (sender, queue runner, prober) tried to open a connection.

    ``outcome`` is ``connected``, ``refused``, ``timeout``, ``reset`` or
    ``blocked`` (an access-network rule).  ``purpose`` says why: ``deliver``,
    ``probe``, ``etrn``, ``finger``, ``relay-probe``...
    """

    dest_host: str
    dest_ip: str
    port: int
    outcome: str
    purpose: str = "deliver"
    preference: int | None = None
    greeting: str = ""
    kind: ClassVar[str] = "connect_attempt"


# --------------------------------------------------------------------------
# Message lifecycle on one host
# --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class MessageAccepted(Event):
    """A server answered 250 after the end of DATA: it took responsibility.

    ``rcpts`` are all recipients the client was told were accepted (each got
    a 2xx to RCPT), whether or not the server actually queued them: the
    difference is exactly what the ``conservation`` check looks for.
    """

    msg: str
    trace: str
    conn: str
    client_ip: str
    helo: str
    mail_from: str
    rcpts: tuple[str, ...]
    size: int
    kind: ClassVar[str] = "message_accepted"

    def _validate(self) -> None:
        _need(len(self.rcpts) > 0, "message_accepted: no recipients")


@dataclass(frozen=True, slots=True)
class MessageSubmitted(Event):
    """A message entered a host's queue without SMTP (traffic source, DSN)."""

    msg: str
    trace: str
    mail_from: str
    rcpts: tuple[str, ...]
    size: int
    origin: str = "local"
    kind: ClassVar[str] = "message_submitted"


@dataclass(frozen=True, slots=True)
class Queued(Event):
    """One recipient of ``msg`` is in the queue (``held``: awaiting release)."""

    msg: str
    trace: str
    rcpt: str
    domain: str
    held: bool = False
    kind: ClassVar[str] = "queued"


@dataclass(frozen=True, slots=True)
class AttemptStarted(Event):
    """A delivery attempt of ``msg`` to ``rcpts`` via ``dest_host`` began."""

    msg: str
    trace: str
    rcpts: tuple[str, ...]
    dest_host: str
    dest_ip: str
    preference: int | None = None
    attempt: int = 1
    kind: ClassVar[str] = "attempt_started"


@dataclass(frozen=True, slots=True)
class Deferred(Event):
    """A recipient's delivery failed transiently; retry at ``next_attempt``."""

    msg: str
    trace: str
    rcpt: str
    code: int
    text: str
    next_attempt: float
    dest_host: str = ""
    kind: ClassVar[str] = "deferred"


@dataclass(frozen=True, slots=True)
class Relayed(Event):
    """The next hop (``dest_host``) answered 250: responsibility passed on."""

    msg: str
    trace: str
    rcpt: str
    dest_host: str
    dest_ip: str
    code: int = 250
    text: str = ""
    kind: ClassVar[str] = "relayed"


@dataclass(frozen=True, slots=True)
class DeliveredToMailbox(Event):
    """Final delivery: the recipient's mailbox on ``host`` holds the message."""

    msg: str
    trace: str
    rcpt: str
    mailbox: str
    kind: ClassVar[str] = "delivered_to_mailbox"


@dataclass(frozen=True, slots=True)
class Bounced(Event):
    """A recipient failed for good; ``dsn_trace`` names the DSN (or ``""``
    when the sender was ``<>`` and no DSN may be sent)."""

    msg: str
    trace: str
    rcpt: str
    code: int
    text: str
    reason: str
    dsn_trace: str = ""
    kind: ClassVar[str] = "bounced"


@dataclass(frozen=True, slots=True)
class DsnCreated(Event):
    """A delivery status notification was built and queued on ``host``."""

    msg: str
    trace: str
    about_trace: str
    to: str
    rcpts: tuple[str, ...]
    action: str
    content_type: str
    mail_from: str = ""
    kind: ClassVar[str] = "dsn_created"


@dataclass(frozen=True, slots=True)
class Discarded(Event):
    """A recipient's copy was deleted on purpose by a named ``policy``."""

    msg: str
    trace: str
    rcpt: str
    policy: str
    reason: str
    kind: ClassVar[str] = "discarded"


@dataclass(frozen=True, slots=True)
class Released(Event):
    """Held mail for ``domain`` was released by ``trigger`` (etrn, finger,
    probe); ``count`` messages were started."""

    domain: str
    trigger: str
    count: int
    client_ip: str = ""
    kind: ClassVar[str] = "released"


# --------------------------------------------------------------------------
# Triggers and policy facts
# --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class EtrnRequest(Event):
    """An ETRN command and the reply it got."""

    conn: str
    client_ip: str
    argument: str
    code: int
    text: str
    kind: ClassVar[str] = "etrn_request"

    def _validate(self) -> None:
        _reply_code(self.kind, self.code)


@dataclass(frozen=True, slots=True)
class FingerQuery(Event):
    """A finger query on the SMTP-on-Demand listener and the answer given."""

    conn: str
    client_ip: str
    query: str
    answer: str
    released: int = 0
    kind: ClassVar[str] = "finger_query"


@dataclass(frozen=True, slots=True)
class PolicyDecision(Event):
    """A policy stage decided something worth recording on its own
    (a DNSBL lookup that timed out, a greylist triple, a filter verdict)."""

    conn: str
    stage: str
    decision: str
    detail: str = ""
    client_ip: str = ""
    kind: ClassVar[str] = "policy_decision"


@dataclass(frozen=True, slots=True)
class Pop3Login(Event):
    """A successful POP3 login (opens POP-before-SMTP relaying)."""

    client_ip: str
    user: str
    kind: ClassVar[str] = "pop3_login"


# --------------------------------------------------------------------------
# Run expectations (appended for the evidence layer)
# --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class GuaranteeExpected(Event):
    """The run expects guarantee ``guarantee`` (an ID of GUARANTEES.md) to
    be ``expected`` (``holds`` or ``violated``), checked with ``params``.

    The runner emits one per expectation right after :class:`RunStarted`
    (``host`` is the runner, ``"mxsim"``), so a report can be rebuilt from
    ``events.jsonl`` alone.  ``params`` must be JSON-serialisable.
    """

    guarantee: str
    expected: str
    params: dict = dataclasses.field(default_factory=dict)
    kind: ClassVar[str] = "guarantee_expected"

    def _validate(self) -> None:
        _need(bool(self.guarantee), "guarantee_expected: guarantee must be named")
        _need(self.expected in ("holds", "violated"),
              f"guarantee_expected: expected must be holds or violated, got {self.expected!r}")
        _need(isinstance(self.params, dict), "guarantee_expected: params must be a mapping")
