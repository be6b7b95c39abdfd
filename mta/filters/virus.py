"""The virus stage: one interface, a verdict type, the built-in scanner.

Every virus scanner is an object with ``async scan(message_bytes) ->
VirusVerdict``.  A verdict is one of three things, and the third is as
final as the other two:

* ``clean``: nothing found, and everything was inspected;
* ``infected``: with the signature names found (the caller deletes the
  message and logs ``Discarded(policy="virus", reason=<names>)``);
* ``error``: with a reason (scanner down, timed out, died, a zip bomb or
  other content the scanner could not inspect).  The caller answers
  :data:`TEMPFAIL` (``451 4.7.1``) and the sender retries: never a silent
  pass, never a crash.

:class:`BuiltinScanner` is deterministic and pure (no I/O, no clock), for
the simulation: it looks for byte signatures, by default the EICAR test
string, in the raw message and in every part the MIME walk yields (decoded
base64 and quoted-printable, nested multiparts, attached messages, zip
members).  Like a ClamAV ``.ndb`` body signature with offset ``*`` it
matches anywhere in a part.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from mta.filters.mime import DEFAULT_LIMITS, MimeWalk, WalkLimits, walk
from mta.filters.replies import TEMPFAIL, Reply

# The 68-byte EICAR anti-virus test file (eicar.org): harmless, and every
# scanner is expected to report it.
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EICAR_NAME = "Eicar-Test-Signature"


class Status(enum.Enum):
    CLEAN = "clean"
    INFECTED = "infected"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class VirusVerdict:
    """What a virus scanner says about one message.

    ``signatures`` are the names found (``infected`` only), ``reason`` why
    scanning failed (``error`` only), ``notes`` what the walk reported that
    did not prevent a decision (MIME defects), ``scanner`` who decided.
    """

    status: Status
    scanner: str
    signatures: tuple[str, ...] = ()
    reason: str = ""
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.status is Status.INFECTED) != bool(self.signatures):
            raise ValueError("infected verdicts, and only they, carry signatures")
        if (self.status is Status.ERROR) != bool(self.reason):
            raise ValueError("error verdicts, and only they, carry a reason")

    @classmethod
    def clean(cls, scanner: str, notes: tuple[str, ...] = ()) -> "VirusVerdict":
        return cls(status=Status.CLEAN, scanner=scanner, notes=notes)

    @classmethod
    def infected(cls, scanner: str, signatures: tuple[str, ...],
                 notes: tuple[str, ...] = ()) -> "VirusVerdict":
        return cls(status=Status.INFECTED, scanner=scanner, signatures=signatures, notes=notes)

    @classmethod
    def error(cls, scanner: str, reason: str, notes: tuple[str, ...] = ()) -> "VirusVerdict":
        return cls(status=Status.ERROR, scanner=scanner, reason=reason, notes=notes)

    @property
    def reply(self) -> Reply | None:
        """:data:`TEMPFAIL` for an error verdict, else None (no reply owed)."""
        return TEMPFAIL if self.status is Status.ERROR else None

    @property
    def discard_reason(self) -> str:
        """The ``reason`` of the ``Discarded`` event for an infected message."""
        return "virus: " + ", ".join(self.signatures) if self.signatures else ""


class VirusScanner(Protocol):
    """The interface every virus scanner offers (built-in, ClamAV)."""

    name: str

    async def scan(self, message: bytes) -> VirusVerdict: ...


@dataclass(frozen=True, slots=True)
class Signature:
    """A byte string that marks a part as infected, found anywhere in it."""

    name: str
    pattern: bytes

    def __post_init__(self) -> None:
        if not self.pattern:
            raise ValueError(f"signature {self.name!r}: empty pattern matches everything")


DEFAULT_SIGNATURES = (Signature(EICAR_NAME, EICAR),)


class BuiltinScanner:
    """Deterministic signature scanner over the MIME walk (see module doc).

    An ``infected`` finding wins over problems elsewhere in the message (the
    message is condemned either way); otherwise any ``unscanned`` problem of
    the walk makes the verdict an ``error``.
    """

    name = "builtin"

    def __init__(self, signatures: tuple[Signature, ...] = DEFAULT_SIGNATURES,
                 limits: WalkLimits = DEFAULT_LIMITS) -> None:
        self.signatures = tuple(signatures)
        self.limits = limits

    async def scan(self, message: bytes) -> VirusVerdict:
        return self.scan_sync(message)

    def scan_sync(self, message: bytes) -> VirusVerdict:
        """The same verdict without a loop (the scanner does no I/O)."""
        return self.judge(message, walk(message, self.limits))

    def judge(self, message: bytes, result: MimeWalk) -> VirusVerdict:
        """The verdict for ``message`` given its walk (shared with other
        stages that walked the message already)."""
        found: list[str] = []
        for data in (message, *(p.data for p in result.parts)):
            for sig in self.signatures:
                if sig.name not in found and sig.pattern in data:
                    found.append(sig.name)
        notes = tuple(f"{p.kind} at {p.where}: {p.detail}" for p in result.problems)
        if found:
            return VirusVerdict.infected(self.name, tuple(found), notes)
        if not result.complete:
            first = result.unscanned[0]
            return VirusVerdict.error(self.name, f"{first.kind} at {first.where}: {first.detail}",
                                      notes)
        return VirusVerdict.clean(self.name, notes)
