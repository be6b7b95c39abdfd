"""Spam levels and the action taken at each, as the SMTP-feed seed lists them.

The seed (``shared/seeds/001``) classifies a message into four levels,
none, low ("possible spam"), med ("likely spam") and high ("99% spam"),
and offers the same menu at low, med and high: do nothing, add a hidden
header, add subject text (``"[SPAM: low] "``, ``"[SPAM: med] "``), or delete
the message.  Spam checking itself is off by default; these are the
defaults when a client switches it on.

Thresholds (score at or above which a level starts; SpamAssassin points):

* low 3.0: below SpamAssassin's own ``required_score`` of 5, "possible";
* med 5.0: SpamAssassin's ``required_score``, what it calls spam;
* high 10.0: twice that; GTUBE (1000) and heavy rule hits only.

Default actions: none -> none, low -> hidden header, med -> subject text,
high -> delete.  ``apply`` is a pure function over the message bytes; it
edits only the header block, byte for byte elsewhere, and keeps the
message's line ending (CRLF or LF).
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import NamedTuple

from mta.filters.spam import SpamScore

HIDDEN_HEADER = "X-Spam-Level"


class SpamLevel(enum.Enum):
    NONE = "none"
    LOW = "low"
    MED = "med"
    HIGH = "high"


class SpamAction(enum.Enum):
    NONE = "none"
    HEADER = "header"     # the seed's "add 'hidden' header text"
    SUBJECT = "subject"   # the seed's "add subject text"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Scores at or above which each level starts (low <= med <= high)."""

    low: float = 3.0
    med: float = 5.0
    high: float = 10.0

    def __post_init__(self) -> None:
        if not self.low <= self.med <= self.high:
            raise ValueError(f"thresholds must rise: low {self.low}, med {self.med}, "
                             f"high {self.high}")

    def level(self, score: float) -> SpamLevel:
        if score >= self.high:
            return SpamLevel.HIGH
        if score >= self.med:
            return SpamLevel.MED
        if score >= self.low:
            return SpamLevel.LOW
        return SpamLevel.NONE


def _default_actions() -> dict[SpamLevel, SpamAction]:
    return {SpamLevel.NONE: SpamAction.NONE, SpamLevel.LOW: SpamAction.HEADER,
            SpamLevel.MED: SpamAction.SUBJECT, SpamLevel.HIGH: SpamAction.DELETE}


@dataclass(frozen=True, slots=True)
class LevelAction:
    """A message's level and the action configured for it (with its score,
    which the hidden header shows)."""

    level: SpamLevel
    action: SpamAction
    score: float | None = None

    def __post_init__(self) -> None:
        if self.level is SpamLevel.NONE and self.action is not SpamAction.NONE:
            raise ValueError("the seed allows no action at level none")


@dataclass(frozen=True)
class SpamSettings:
    """One client's spam settings: off by default (the seed's default)."""

    enabled: bool = False
    thresholds: Thresholds = Thresholds()
    actions: dict[SpamLevel, SpamAction] = field(default_factory=_default_actions)

    def __post_init__(self) -> None:
        for level, action in self.actions.items():
            if not isinstance(level, SpamLevel) or not isinstance(action, SpamAction):
                raise ValueError(f"actions map SpamLevel to SpamAction, got {level!r}: {action!r}")
        if self.actions.get(SpamLevel.NONE, SpamAction.NONE) is not SpamAction.NONE:
            raise ValueError("the seed allows no action at level none")

    def decide(self, score: SpamScore | float) -> LevelAction:
        """The level and action for ``score``.  Spam checking off means
        level none, action none, whatever the score; a failed score is the
        caller's to tempfail (``score.reply``), so it is refused here."""
        value = score.score if isinstance(score, SpamScore) else float(score)
        if isinstance(score, SpamScore) and not score.ok:
            raise ValueError(f"cannot classify a failed score: {score.error}")
        if not self.enabled:
            return LevelAction(SpamLevel.NONE, SpamAction.NONE, value)
        level = self.thresholds.level(value)
        return LevelAction(level, self.actions.get(level, SpamAction.NONE), value)


def subject_prefix(level: SpamLevel) -> str:
    """The seed's subject text, ``"[SPAM: low] "`` (high by the same pattern)."""
    return f"[SPAM: {level.value}] "


class Applied(NamedTuple):
    """``apply``'s result: the new message (None: delete it) and what was done."""

    message: bytes | None
    done: str


def _split(message: bytes) -> tuple[bytes, bytes, bytes]:
    """(header block without its blank line, line ending, the rest from the
    blank line on).  A message with no blank line is all header."""
    crlf = message.find(b"\r\n\r\n")
    lf = message.find(b"\n\n")
    if crlf >= 0 and (lf < 0 or crlf < lf):
        return message[:crlf + 2], b"\r\n", message[crlf + 2:]
    if lf >= 0:
        return message[:lf + 1], b"\n", message[lf + 1:]
    eol = b"\r\n" if b"\r\n" in message or not message else b"\n"
    head = message if not message or message.endswith(b"\n") else message + eol
    return head, eol, eol


_SUBJECT = re.compile(rb"^subject:[ \t]*", re.IGNORECASE | re.MULTILINE)


def apply(level_action: LevelAction, message: bytes) -> Applied:
    """Carry out ``level_action`` on ``message`` (see the module docstring).

    ``done`` is one of ``"none"``, ``"header X-Spam-Level: <level>"``,
    ``"subject prefix [SPAM: <level>] "``, ``"deleted"``.
    """
    la = level_action
    if la.action is SpamAction.NONE:
        return Applied(message, "none")
    if la.action is SpamAction.DELETE:
        return Applied(None, "deleted")
    head, eol, rest = _split(message)
    if la.action is SpamAction.HEADER:
        value = la.level.value if la.score is None else f"{la.level.value} score={la.score:.1f}"
        line = f"{HIDDEN_HEADER}: {value}".encode("ascii") + eol
        return Applied(line + head + rest, f"header {HIDDEN_HEADER}: {la.level.value}")
    prefix = subject_prefix(la.level)
    encoded = prefix.encode("ascii")
    found = _SUBJECT.search(head)
    if found is None:
        return Applied(b"Subject: " + encoded.rstrip() + eol + head + rest,
                       f"subject prefix {prefix}")
    at = found.end()
    if head[at:at + len(encoded)] == encoded:   # already marked: never twice
        return Applied(message, f"subject prefix {prefix}(already present)")
    if at == found.start() + len(b"subject:"):  # "Subject:x": keep a space after the colon
        encoded = b" " + encoded
    return Applied(head[:at] + encoded + head[at:] + rest, f"subject prefix {prefix}")
