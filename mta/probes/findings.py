"""What a probe observes and what it concludes.

:class:`Reply` is one SMTP reply as read off the wire (code, lines, and the
RFC 3463 enhanced status code when the text starts with one);
:class:`Finding` is one probe's conclusion with its evidence.  A finding
is ``pass`` or ``fail`` only on evidence; ``info`` reports a behaviour no
rule judges (no greylisting, say), ``skip`` a probe that could not apply
(the server does not offer the extension, or an option is missing).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

Status = Literal["pass", "fail", "info", "skip"]
STATUSES: tuple[Status, ...] = get_args(Status)

#: RFC 3463 §2: class.subject.detail, class 2, 4 or 5.
ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?=\s|$)")
#: A reply line: three digits, then space, hyphen (more lines follow) or end.
REPLY_LINE = re.compile(r"^([2-5]\d\d)([ -]|$)")


@dataclass(frozen=True)
class Reply:
    """One SMTP reply: ``code`` and its text ``lines`` (code stripped)."""

    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.lines)

    @property
    def enhanced(self) -> str | None:
        """The enhanced status code of the first line, e.g. ``5.7.1``."""
        m = ENHANCED.match(self.lines[0]) if self.lines else None
        return ".".join(m.groups()) if m else None

    @property
    def klass(self) -> int:
        return self.code // 100

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip()


@dataclass(frozen=True)
class Finding:
    """One probe's conclusion: ``probe`` (its ID), ``status``, a one-line
    ``summary`` and the ``evidence`` (commands and replies) behind it."""

    probe: str
    status: Status
    summary: str
    evidence: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"finding status must be one of {STATUSES}, got {self.status!r}")

    @property
    def failed(self) -> bool:
        return self.status == "fail"
