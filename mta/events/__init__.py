"""The mail facts a run records: one small frozen dataclass per kind of fact.

Every component reports what happens through an injected
:class:`~mta.events.sinks.EventSink` (``sink.emit(event)``); the event log
of a run is the sequence of these events (plus the run and world events the
simulation adds, in ``sim.events``), and every report and guarantee check is
a projection of it.  :mod:`mta.events.codec` is their one encoding.

Conventions shared by every event kind:

* events are keyword-only: ``Relayed(t=..., host=..., msg=..., ...)``;
* ``t`` is the time in seconds: simulated time (``env.now``) in a simulated
  run, Unix time in a live one;
* ``host`` is the name of the host that observed the fact;
* ``msg`` is a queue ID, unique within a run across hosts (``host/N``).
  ``trace`` ties copies of one message across hops: it is the message's
  ``Message-ID`` header (the value between ``<`` and ``>``); a DSN gets a
  trace of its own and names the trace it reports on;
* ``rcpt`` is one envelope recipient, as given in ``RCPT TO`` (no brackets);
* ``conn`` is a connection ID, unique within a run (``host/cN``).

Events validate their fields on construction (:mod:`mta.events.base`): a
field typed with one of the ``Literal`` vocabularies below (``outcome``,
``reason``, ``action``, ``trigger``...) must hold one of its values, so an
event that could not have happened raises
:class:`~mta.events.base.EventError`, which is our bug, not the peer's.
Each vocabulary is also a tuple (``CONNECT_OUTCOMES``, ``BOUNCE_REASONS``...)
for code that must name or list its values.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, get_args

from mta.events.base import Event, need


def _reply_code(kind: str, code: int) -> None:
    need(isinstance(code, int) and 200 <= code <= 599, f"{kind}: bad reply code {code!r}")


# -- Host lifecycle and component failures -----------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class HostCrashed(Event):
    """A host lost everything not on its (simulated) disk."""

    kind: ClassVar[str] = "host_crashed"


@dataclass(frozen=True, slots=True, kw_only=True)
class HostRestarted(Event):
    """A host came back and recovered its queue from its store."""

    recovered: int = 0
    kind: ClassVar[str] = "host_restarted"


@dataclass(frozen=True, slots=True, kw_only=True)
class ComponentError(Event):
    """An exception escaped component code.  A run with one of these fails."""

    where: str
    error: str
    kind: ClassVar[str] = "component_error"


# -- Connections and the SMTP dialogue (server side unless stated) -----------

#: The listener a connection arrived on.
Service = Literal["smtp", "finger", "pop3"]
SERVICES: tuple[Service, ...] = get_args(Service)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionOpened(Event):
    """A server accepted a TCP connection on ``port`` from ``client_ip``."""

    conn: str
    client_ip: str
    port: int
    service: Service = "smtp"
    kind: ClassVar[str] = "connection_opened"


#: Why a server-side connection ended: the client said QUIT, closed its end
#: (``eof``), the transport was reset or closed under us, the session timed
#: out, or the server dropped the client (a 4xx greeting, too many errors,
#: a non-SMTP command, a command-count limit).
CloseReason = Literal["quit", "eof", "closed", "reset", "timeout", "deferred-at-connect",
                      "too-many-errors", "non-smtp-command", "call-limit",
                      # POP3: too many failed logins, a failed STLS handshake, server stop
                      "cut-off", "tls-failed", "shutdown"]
CLOSE_REASONS: tuple[CloseReason, ...] = get_args(CloseReason)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionClosed(Event):
    """A server-side connection ended; ``reason`` is one of :data:`CLOSE_REASONS`."""

    conn: str
    reason: CloseReason = "closed"
    kind: ClassVar[str] = "connection_closed"


@dataclass(frozen=True, slots=True, kw_only=True)
class SmtpReply(Event):
    """A server gave one reply.  Enough to rebuild the transaction log.

    ``command`` is the verb the reply answers (``CONNECT`` for the greeting,
    ``DATA_END`` for the reply after the final dot); ``stage`` names the
    policy stage that decided it, or ``""`` for protocol-level replies.
    ``helo`` and ``mail_from`` are the session state when the reply was
    given; ``rcpts``, the accepted recipients, only on the ``DATA_END``
    reply (the RCPT replies before it say which were accepted: repeating
    them on every reply would make the log quadratic in the recipients).
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


#: How a connection attempt ended.  ``connected`` includes a server that
#: then greeted with an error (the ``greeting`` says so); a blocked port 25
#: drops the SYNs, so it shows as ``timeout``.
ConnectOutcome = Literal["connected", "refused", "timeout", "reset"]
CONNECT_OUTCOMES: tuple[ConnectOutcome, ...] = get_args(ConnectOutcome)

#: Why a client connected: a queue delivering, a connectivity probe, an
#: ETRN or finger trigger, and the simulation's spammer and relay prober.
ConnectPurpose = Literal["deliver", "probe", "etrn", "finger", "spam", "relay-probe",
                         # a roaming customer's mail client (restricted relays)
                         "submit", "pop3"]
CONNECT_PURPOSES: tuple[ConnectPurpose, ...] = get_args(ConnectPurpose)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectAttempt(Event):
    """A client (sender, queue runner, prober) tried to open a connection.

    ``outcome`` is one of :data:`CONNECT_OUTCOMES`, ``purpose`` one of
    :data:`CONNECT_PURPOSES`.
    """

    dest_host: str
    dest_ip: str
    port: int
    outcome: ConnectOutcome
    purpose: ConnectPurpose = "deliver"
    preference: int | None = None
    greeting: str = ""
    kind: ClassVar[str] = "connect_attempt"


#: What a sender's MX lookup came to (RFC 5321 §5.1, RFC 7505): MX records,
#: none (the domain's own address is its implicit MX), a null MX, the name
#: does not exist, or the lookup failed for now.
MxOutcome = Literal["answer", "no-mx", "null-mx", "nxdomain", "timeout", "servfail"]
MX_OUTCOMES: tuple[MxOutcome, ...] = get_args(MxOutcome)


@dataclass(frozen=True, slots=True, kw_only=True)
class MxAnswer(Event):
    """What DNS told a delivering host about where ``domain``'s mail goes.

    ``name`` is the name looked up (the domain itself, or a route's next hop
    looked up as an MX domain); ``preferences`` and ``exchanges`` are its MX
    records pairwise, in the order the resolver returned them (before the
    sender shuffles equal preferences); ``unresolved`` lists the exchanges
    with no address to try (their A lookup failed or was empty).  A null MX
    is recorded as its record ``0 .``.  The mx-order check judges every
    delivery round against the answer its host was given.
    """

    domain: str
    name: str
    outcome: MxOutcome
    preferences: tuple[int, ...] = ()
    exchanges: tuple[str, ...] = ()
    unresolved: tuple[str, ...] = ()
    kind: ClassVar[str] = "mx_answer"

    def _validate(self) -> None:
        need(len(self.preferences) == len(self.exchanges),
             f"{self.kind}: {len(self.preferences)} preferences for "
             f"{len(self.exchanges)} exchanges")
        need(all(isinstance(p, int) and 0 <= p <= 65535 for p in self.preferences),
             f"{self.kind}: MX preferences are 16-bit numbers (RFC 1035), got "
             f"{self.preferences!r}")
        for pref, exchange in zip(self.preferences, self.exchanges):
            need(exchange != "." or (pref == 0 and self.outcome == "null-mx"),
                 f"{self.kind}: a null MX is '0 .' and makes the outcome null-mx (RFC 7505)")
        need(set(self.unresolved) <= set(self.exchanges),
             f"{self.kind}: unresolved {self.unresolved!r} are not among the exchanges")


# -- Message lifecycle on one host -------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
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
        need(len(self.rcpts) > 0, "message_accepted: no recipients")


#: Where a submitted message came from: a local sender, or the host's own DSN.
Origin = Literal["local", "dsn"]
ORIGINS: tuple[Origin, ...] = get_args(Origin)


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageSubmitted(Event):
    """A message entered a host's queue without SMTP (traffic source, DSN)."""

    msg: str
    trace: str
    mail_from: str
    rcpts: tuple[str, ...]
    size: int
    origin: Origin = "local"
    kind: ClassVar[str] = "message_submitted"


@dataclass(frozen=True, slots=True, kw_only=True)
class Queued(Event):
    """One recipient of ``msg`` is in the queue (``held``: awaiting release)."""

    msg: str
    trace: str
    rcpt: str
    domain: str
    held: bool = False
    kind: ClassVar[str] = "queued"


@dataclass(frozen=True, slots=True, kw_only=True)
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


@dataclass(frozen=True, slots=True, kw_only=True)
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


@dataclass(frozen=True, slots=True, kw_only=True)
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


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveredToMailbox(Event):
    """Final delivery: the recipient's mailbox on ``host`` holds the message."""

    msg: str
    trace: str
    rcpt: str
    mailbox: str
    kind: ClassVar[str] = "delivered_to_mailbox"


#: Why a recipient failed for good: its lifetime in the queue ran out, the
#: next hop refused it (5xx), no route exists, or the domain has a null MX
#: (RFC 7505).
BounceReason = Literal["expired", "rejected", "unroutable", "null-mx"]
BOUNCE_REASONS: tuple[BounceReason, ...] = get_args(BounceReason)


@dataclass(frozen=True, slots=True, kw_only=True)
class Bounced(Event):
    """A recipient failed for good; ``dsn_trace`` names the DSN (or ``""``
    when the sender was ``<>`` and no DSN may be sent)."""

    msg: str
    trace: str
    rcpt: str
    code: int
    text: str
    reason: BounceReason
    dsn_trace: str = ""
    kind: ClassVar[str] = "bounced"


#: The RFC 3464 ``Action`` of a DSN: a bounce, or a delay warning.
DsnAction = Literal["failed", "delayed"]
DSN_ACTIONS: tuple[DsnAction, ...] = get_args(DsnAction)


@dataclass(frozen=True, slots=True, kw_only=True)
class DsnCreated(Event):
    """A delivery status notification was built and queued on ``host``."""

    msg: str
    trace: str
    about_trace: str
    to: str
    rcpts: tuple[str, ...]
    action: DsnAction
    content_type: str
    mail_from: str = ""
    kind: ClassVar[str] = "dsn_created"


@dataclass(frozen=True, slots=True, kw_only=True)
class Discarded(Event):
    """A recipient's copy was deleted on purpose by a named ``policy``."""

    msg: str
    trace: str
    rcpt: str
    policy: str
    reason: str
    kind: ClassVar[str] = "discarded"


#: The stages of the SMTP feed's content filter (seed 001), in their order.
FilterStage = Literal["virus", "spam"]
FILTER_STAGES: tuple[FilterStage, ...] = get_args(FilterStage)
#: What one filter stage said: ``clean`` (virus: nothing found), ``infected``
#: (deleted), ``scored`` (spam: a level and its action), ``off`` (spam
#: checking switched off: nothing scored, nothing changed), ``error`` (the
#: scanner failed: the message is deferred and filtered again, never passed).
FilterOutcome = Literal["clean", "infected", "scored", "off", "error"]
FILTER_OUTCOMES: tuple[FilterOutcome, ...] = get_args(FilterOutcome)


@dataclass(frozen=True, slots=True, kw_only=True)
class FilterVerdict(Event):
    """A content-filter stage judged a queued message (after queueing,
    before its first delivery attempt).

    ``level``/``action`` are the spam level and the action taken (spam
    only); ``score`` the points; ``detail`` the signatures found, the rules
    hit or the error; ``waited``/``service`` the seconds spent waiting for
    a scanner process and being scanned.  ``complete`` marks the last
    verdict of a chain run that finished: the message is filtered and may
    be delivered (the queue folds it, so a crash before it filters again).
    """

    msg: str
    trace: str
    stage: FilterStage
    outcome: FilterOutcome
    scanner: str = ""
    detail: str = ""
    level: str = ""
    action: str = ""
    score: float = 0.0
    waited: float = 0.0
    service: float = 0.0
    complete: bool = False
    kind: ClassVar[str] = "filter_verdict"


#: What released held mail: an ETRN command (RFC 1985), a finger query
#: (SMTP-on-Demand), or the queue's own connectivity probe.
ReleaseTrigger = Literal["etrn", "finger", "probe"]
RELEASE_TRIGGERS: tuple[ReleaseTrigger, ...] = get_args(ReleaseTrigger)


@dataclass(frozen=True, slots=True, kw_only=True)
class Released(Event):
    """Held mail for ``domain`` was released by ``trigger`` (one of
    :data:`RELEASE_TRIGGERS`); ``count`` messages were started."""

    domain: str
    trigger: ReleaseTrigger
    count: int
    client_ip: str = ""
    kind: ClassVar[str] = "released"


# -- Operator actions on a queue (seed 001: the SMTP feed's operator) --------

@dataclass(frozen=True, slots=True, kw_only=True)
class QueueLifetimeSet(Event):
    """The operator set the queue lifetime for mail to ``domain`` on
    ``host`` to ``lifetime`` seconds after queueing, from ``t`` on and for
    mail already queued (seed 001: "we can be asked to extend the queue
    time").  ``previous`` is the lifetime it replaced."""

    domain: str
    lifetime: float
    previous: float
    kind: ClassVar[str] = "queue_lifetime_set"


#: Where a feed hands mail for a client domain: ``feed`` (relayed to the
#: client's own server) or ``mailboxes`` (filed into temporary POP3
#: mailboxes on the feed host).  Seed 001: "one or the other but not both".
DeliveryMode = Literal["feed", "mailboxes"]
DELIVERY_MODES: tuple[DeliveryMode, ...] = get_args(DeliveryMode)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryModeSet(Event):
    """The operator switched ``domain`` on ``host`` to ``mode`` (one of
    :data:`DELIVERY_MODES`) at ``t``.  ``accounts``: the POP3 users of the
    temporary mailboxes (``mailboxes``); ``left``: copies still in them when
    switched back to the feed."""

    domain: str
    mode: DeliveryMode
    accounts: tuple[str, ...] = ()
    left: int = 0
    kind: ClassVar[str] = "delivery_mode_set"


# -- Triggers and policy facts -----------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
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


@dataclass(frozen=True, slots=True, kw_only=True)
class FingerQuery(Event):
    """A finger query on the SMTP-on-Demand listener and the answer given."""

    conn: str
    client_ip: str
    query: str
    answer: str
    released: int = 0
    kind: ClassVar[str] = "finger_query"


#: The facts a policy stage records on their own (``mta.policy`` notes): a
#: relay grant, a recipient dropped over the limit, a DNSBL listing, a bogus
#: DNSBL answer, a DNSBL failure let through (open) or refused (closed).
PolicyNote = Literal["relay-permitted", "dropped-over-limit", "listed", "bogus-answer",
                     "fail-open", "fail-closed",
                     # POP3 logins (stage pop3-auth) and STLS (stage pop3-stls)
                     "fail", "delay", "disconnect", "in-use", "handshake-failed",
                     # greylisting (stage greylist)
                     "greylist", "pass", "expired", "store-error",
                     # restricted relays (stages smtp-auth, attachments)
                     "blocked-attachment", "unscanned"]
POLICY_NOTES: tuple[PolicyNote, ...] = get_args(PolicyNote)


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyDecision(Event):
    """A policy stage decided something worth recording on its own
    (a DNSBL lookup that timed out, a greylist triple, a filter verdict)."""

    conn: str
    stage: str
    decision: PolicyNote
    detail: str = ""
    client_ip: str = ""
    kind: ClassVar[str] = "policy_decision"


@dataclass(frozen=True, slots=True, kw_only=True)
class Pop3Login(Event):
    """A successful POP3 login (opens POP-before-SMTP relaying)."""

    client_ip: str
    user: str
    kind: ClassVar[str] = "pop3_login"


#: What a mail client's attempt came to (:class:`ClientSubmission`).
SubmitOutcome = Literal["checked", "login-failed", "timeout", "refused", "reset", "intercepted",
                        "auth-failed", "rejected", "sent", "error"]
SUBMIT_OUTCOMES: tuple[SubmitOutcome, ...] = get_args(SubmitOutcome)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientSubmission(Event):
    """What a mail client (a roaming customer's MUA) saw when it checked
    mail (``service="pop3"``) or sent through a relay (``"smtp"``).

    ``outcome`` is one of :data:`SUBMIT_OUTCOMES`: ``intercepted`` means the
    banner did not name the server the client asked for (an access ISP
    redirecting port 25); ``code`` is the SMTP reply that decided (0 when
    none); ``detail`` says the rest (the banner, the refused command);
    ``mail_from`` and ``attachments`` (file names) describe the message sent.
    """

    actor: str
    service: Service
    dest_host: str
    dest_ip: str
    port: int
    outcome: SubmitOutcome
    code: int = 0
    detail: str = ""
    mail_from: str = ""
    attachments: tuple[str, ...] = ()
    kind: ClassVar[str] = "client_submission"

    def _validate(self) -> None:
        need(self.code == 0 or 200 <= self.code <= 599,
             f"{self.kind}: bad reply code {self.code!r}")
