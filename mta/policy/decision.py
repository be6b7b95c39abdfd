"""The types every policy stage speaks: phases, facts, decisions, lookups.

A stage is pure: it reads :class:`Facts` (what the server knows about the
session so far, including DNS answers the server fetched beforehand) and
returns a :class:`Decision`, or ``None`` for "no opinion".  Nothing here does
I/O, so every stage is testable as a plain function call.

Reply codes follow RFC 5321 (4yz transient, 5yz permanent) and carry an
enhanced status code (RFC 3463, ``class.subject.detail``) whose class must
agree with the reply code.
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from mta.addresses import Address


class Phase(enum.Enum):
    """Where in the SMTP dialogue a decision is taken."""

    CONNECT = "connect"
    HELO = "helo"
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"      # after the final dot


class Action(enum.Enum):
    ACCEPT = "accept"
    DEFER = "defer"     # 4yz: try again later
    REJECT = "reject"   # 5yz: do not repeat


_ENHANCED = re.compile(r"[245]\.\d{1,3}\.\d{1,3}\Z")


class PolicyError(ValueError):
    """A stage built an impossible decision (our bug, not the peer's)."""


@dataclass(frozen=True, slots=True)
class Note:
    """Something a stage wants on the record even if it does not decide
    (a DNSBL that timed out and was skipped).  Becomes a PolicyDecision."""

    decision: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    """What one stage says.

    ``keep=False`` on an accepted recipient means: answer 2xx but do not
    keep it (the documented "silently drop" recipient limit).  ``grants``
    are permissions for later stages (``"relay"``), recorded on the facts.
    ``headers`` are prepended to an accepted message; ``tags`` are labels
    for reports.
    """

    action: Action
    stage: str
    code: int = 250
    enhanced: str = ""
    text: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    tags: tuple[str, ...] = ()
    notes: tuple[Note, ...] = ()
    keep: bool = True
    grants: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        first = {Action.ACCEPT: 2, Action.DEFER: 4, Action.REJECT: 5}[self.action]
        if self.code // 100 != first:
            raise PolicyError(f"{self.stage}: {self.action.value} with code {self.code}")
        if self.enhanced and (not _ENHANCED.match(self.enhanced)
                              or int(self.enhanced[0]) != first):
            raise PolicyError(f"{self.stage}: bad enhanced code {self.enhanced!r}")
        if self.action is not Action.ACCEPT and not self.text:
            raise PolicyError(f"{self.stage}: a refusal needs a reply text")

    # Constructors read better at call sites than the raw dataclass.
    @classmethod
    def accept(cls, stage: str, **kw) -> "Decision":
        return cls(Action.ACCEPT, stage, **kw)

    @classmethod
    def defer(cls, stage: str, code: int, enhanced: str, text: str, **kw) -> "Decision":
        return cls(Action.DEFER, stage, code, enhanced, text, **kw)

    @classmethod
    def reject(cls, stage: str, code: int, enhanced: str, text: str, **kw) -> "Decision":
        return cls(Action.REJECT, stage, code, enhanced, text, **kw)

    @property
    def refused(self) -> bool:
        return self.action is not Action.ACCEPT

    @property
    def reply(self) -> str:
        """The reply line: ``550 5.1.1 text``."""
        parts = [str(self.code)]
        if self.enhanced:
            parts.append(self.enhanced)
        if self.text:
            parts.append(self.text)
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Lookup:
    """A DNS question a stage needs answered before it can decide.

    ``kind`` is ``"dnsbl"`` (``name`` an IPv4 address, ``zone`` the list)
    or ``"a"`` / ``"txt"`` (``name`` a host name).
    """

    kind: str
    name: str
    zone: str = ""


@dataclass(frozen=True, slots=True)
class LookupResult:
    """The answer: addresses/strings, or ``error`` (``timeout``,
    ``servfail``, ``error``) when we could not find out.  NXDOMAIN is an
    answer: ``answers == ()`` and no error."""

    answers: tuple[str, ...] = ()
    error: str = ""


@dataclass
class Facts:
    """What the server knows about one session, as stages see it.

    The server owns and updates this; stages only read it (the chain records
    ``grants``).  ``rcpts`` are the recipients acknowledged with 2xx so far
    in this transaction, ``kept`` those actually kept.  ``dns`` holds the
    answers of the lookups stages asked for.
    """

    client_ip: str
    client_port: int = 0
    server_ip: str = ""
    helo: str = ""
    esmtp: bool = False
    authenticated: bool = False
    auth_user: str = ""
    mail_from: Address | None = None
    declared_size: int | None = None
    rcpts: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    data_size: int = 0
    data_overflow: bool = False
    grants: set[str] = field(default_factory=set)
    dns: dict[Lookup, LookupResult] = field(default_factory=dict)
    headers: list[tuple[str, str]] = field(default_factory=list)

    def new_transaction(self) -> None:
        """Forget the envelope (RSET, HELO, after DATA); keep the session."""
        self.mail_from = None
        self.declared_size = None
        self.rcpts = []
        self.kept = []
        self.data_size = 0
        self.data_overflow = False
        self.headers = []
