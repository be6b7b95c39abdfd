"""The spam stage's scorers: one interface, the score type, the built-in rules.

Every scorer is an object with ``async score(message_bytes) -> SpamScore``.
A score is the sum of the rules that hit, with each rule's name and points
(SpamAssassin's model).  A scorer that fails (spamd down, timed out)
returns ``SpamScore.failed(reason)``: the caller gives :data:`TEMPFAIL`
(``451 4.7.1``) as for a virus-scanner error, never a pass.

:class:`BuiltinScorer` is deterministic and pure, for the simulation.  Its
rules borrow SpamAssassin's names where they test the same thing, so a
report reads the same with either scorer; the points are ours, chosen so
that a traffic model can reach every level (thresholds in
:mod:`mta.filters.levels`: low 3, med 5, high 10):

=================  ======  ===============================================
rule               points  hits when
=================  ======  ===============================================
GTUBE              1000.0  the GTUBE test string is in the body
DRUGS_ERECTILE        3.0  viagra, cialis or levitra (any case, 1/i and 0/o
                           swapped) in the subject or a text part
LOTS_OF_MONEY         2.5  "million dollars", "$1,000,000", "lottery winner"...
SUBJ_ALL_CAPS         2.0  the subject has 8+ letters and no lower case
INVALID_MSGID         2.0  a Message-ID that is not ``<left@right>``
MISSING_MID           1.5  no Message-ID header
MIME_HTML_ONLY        1.5  text/html parts and no text/plain part
SUBJ_EXCLAIM          1.5  three or more ``!`` in the subject
BODY_EXCLAIM          1.0  ten or more ``!`` in the text parts
=================  ======  ===============================================

Ham (a well-formed plain-text message) scores 0; everything but GTUBE
together scores 15.0.
"""
from __future__ import annotations

import email.header
import re
from dataclasses import dataclass
from typing import Callable, Protocol

from mta.filters.mime import DEFAULT_LIMITS, MimeWalk, WalkLimits, parse, walk
from mta.filters.replies import TEMPFAIL, Reply

# The Generic Test for Unsolicited Bulk Email (SpamAssassin's test string).
GTUBE = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


@dataclass(frozen=True, slots=True)
class RuleHit:
    """One rule that hit, with the points it gave."""

    name: str
    score: float


@dataclass(frozen=True, slots=True)
class SpamScore:
    """The score of one message: ``score`` is the sum of ``rules``' points
    (as the scorer reports it), ``error`` non-empty when scoring failed."""

    score: float
    rules: tuple[RuleHit, ...] = ()
    scorer: str = ""
    error: str = ""

    @classmethod
    def failed(cls, scorer: str, reason: str) -> "SpamScore":
        return cls(score=0.0, scorer=scorer, error=reason or "unknown error")

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def reply(self) -> Reply | None:
        """:data:`TEMPFAIL` when scoring failed, else None."""
        return None if self.ok else TEMPFAIL

    @property
    def rule_names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.rules)


class SpamScorer(Protocol):
    """The interface every spam scorer offers (built-in, spamd)."""

    name: str

    async def score(self, message: bytes) -> SpamScore: ...


@dataclass(frozen=True, slots=True)
class Facts:
    """What the built-in rules look at, extracted once per message."""

    subject: str
    message_id: str | None
    body: bytes                   # raw message body (GTUBE is searched here too)
    text: str                     # decoded text of the text/* parts, tags stripped
    has_plain: bool
    has_html: bool


@dataclass(frozen=True, slots=True)
class Rule:
    """A named test and the points it gives when it hits."""

    name: str
    score: float
    test: Callable[[Facts], bool]
    description: str = ""


_DRUGS = re.compile(r"\b(?:v[i1!|]agra|c[i1!|]al[i1!|]s|lev[i1!|]tra)\b", re.IGNORECASE)
_MONEY = re.compile(r"million (?:us )?dollars|\$\s?\d{1,3}(?:,\d{3}){2,}|lottery winner"
                    r"|you have won", re.IGNORECASE)
_MSGID = re.compile(r"\s*<[^<>@\s]+@[^<>@\s]+>\s*\Z")
_TAG = re.compile(r"<[^>]*>")


def _caps(subject: str) -> bool:
    letters = [c for c in subject if c.isalpha()]
    return len(letters) >= 8 and not any(c.islower() for c in letters)


RULES: tuple[Rule, ...] = (
    Rule("GTUBE", 1000.0, lambda f: GTUBE in f.body, "the GTUBE test string"),
    Rule("DRUGS_ERECTILE", 3.0, lambda f: bool(_DRUGS.search(f.subject) or _DRUGS.search(f.text)),
         "refers to an erectile drug"),
    Rule("LOTS_OF_MONEY", 2.5, lambda f: bool(_MONEY.search(f.text)), "huge sums of money"),
    Rule("SUBJ_ALL_CAPS", 2.0, lambda f: _caps(f.subject), "subject is all capitals"),
    Rule("INVALID_MSGID", 2.0,
         lambda f: f.message_id is not None and not _MSGID.match(f.message_id),
         "Message-ID is not <left@right>"),
    Rule("MISSING_MID", 1.5, lambda f: f.message_id is None, "no Message-ID"),
    Rule("MIME_HTML_ONLY", 1.5, lambda f: f.has_html and not f.has_plain,
         "only text/html parts"),
    Rule("SUBJ_EXCLAIM", 1.5, lambda f: f.subject.count("!") >= 3, "3+ '!' in the subject"),
    Rule("BODY_EXCLAIM", 1.0, lambda f: f.text.count("!") >= 10, "10+ '!' in the text"),
)


def _header_text(value: object) -> str:
    """A header as text, RFC 2047 encoded words decoded; never raises."""
    if value is None:
        return ""
    try:
        return str(email.header.make_header(email.header.decode_header(str(value))))
    except Exception:
        return str(value)


def _body(message: bytes) -> bytes:
    for sep in (b"\r\n\r\n", b"\n\n"):
        at = message.find(sep)
        if at >= 0:
            return message[at + len(sep):]
    return b""


def facts(message: bytes, result: MimeWalk | None = None) -> Facts:
    """The :class:`Facts` of ``message`` (``result``: its walk, if known)."""
    root = parse(message)
    result = result if result is not None else walk(message, DEFAULT_LIMITS)
    texts: list[str] = []
    has_plain = has_html = False
    for part in result.parts:
        if part.in_archive or not part.content_type.startswith("text/"):
            continue
        if part.filename:   # a text attachment is not the message's text
            continue
        text = part.data.decode("utf-8", "replace")
        if part.content_type == "text/html":
            has_html = True
            text = _TAG.sub(" ", text)
        elif part.content_type == "text/plain":
            has_plain = True
        texts.append(text)
    mid = root.get("Message-ID")
    return Facts(subject=_header_text(root.get("Subject")),
                 message_id=None if mid is None else str(mid),
                 body=_body(message), text="\n".join(texts),
                 has_plain=has_plain, has_html=has_html)


class BuiltinScorer:
    """Deterministic rule scorer (see the module docstring for the rules)."""

    name = "builtin"

    def __init__(self, rules: tuple[Rule, ...] = RULES,
                 limits: WalkLimits = DEFAULT_LIMITS) -> None:
        self.rules = tuple(rules)
        self.limits = limits

    async def score(self, message: bytes) -> SpamScore:
        return self.score_sync(message)

    def score_sync(self, message: bytes, result: MimeWalk | None = None) -> SpamScore:
        """The same score without a loop (the scorer does no I/O)."""
        try:
            f = facts(message, result if result is not None else walk(message, self.limits))
        except Exception as exc:  # defensive: hostile input is an error score, not a crash
            return SpamScore.failed(self.name, f"{type(exc).__name__}: {exc}"[:200])
        hits = tuple(RuleHit(r.name, r.score) for r in self.rules if r.test(f))
        return SpamScore(score=round(sum(h.score for h in hits), 3), rules=hits,
                         scorer=self.name)
