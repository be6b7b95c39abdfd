"""The receiving server's protocol rules, as data and pure functions.

Nothing here does I/O or touches a connection: the session
(:mod:`mta.smtp.session`) gathers the facts, asks these functions, and says
what they answer.  Each rule cites where it comes from:

* :func:`screen_line`: what makes a command line unreadable (empty, NUL,
  8-bit, too long: RFC 5321 §4.5.3.1.4, with SIZE's 26 extra octets for
  MAIL, RFC 1870 §3) and how a line is logged, and
  :data:`FORBIDDEN_COMMANDS`, Postfix's list of things that are not SMTP;
* :data:`COMMAND_ORDER` and :func:`order_refusal`: which verb needs what
  state (RFC 5321 §4.1.4, 503 5.5.1; AUTH not inside a transaction, RFC
  4954 §4), and :func:`lockdown_refusal` (RFC 5321 §3.1: after a 554
  greeting, 503 to everything but QUIT);
* :func:`ehlo_keywords`: the EHLO reply, as a function of the server's
  settings and the session;
* :class:`ErrorCount`: Postfix's hard error limit (``smtpd_hard_error_limit``
  20) and recipient overshoot (``smtpd_recipient_overshoot_limit`` 1000).
"""
from __future__ import annotations

import sys
from enum import Enum
from typing import NamedTuple, Sequence

from mta.smtp import replies as R

# Postfix refuses these "commands": a mail header or an HTTP proxy request
# pasted into an SMTP session (smtpd.c, SMTPD_CMD_FLAG_FORBIDDEN).
FORBIDDEN_COMMANDS = frozenset(("RECEIVED:", "REPLY-TO:", "MESSAGE-ID:", "SUBJECT:", "FROM:",
                                "CONNECT", "USER-AGENT:", "GET", "POST"))

#: Octets " SIZE=nnnnnnnnnnnnnnnnnnnn" may add to MAIL (RFC 1870 §3).
SIZE_PARAMETER_OCTETS = 26

#: Postfix's smtpd_recipient_overshoot_limit: refusals for the recipient
#: limit are not client errors until this many have been given.
RECIPIENT_OVERSHOOT_LIMIT = 1000


class Command(NamedTuple):
    """One command line, split: ``verb`` upper-cased, ``arg`` None when empty."""

    verb: str
    arg: str | None


def screen_line(line: bytes, *, base_limit: int, extended: bool,
                size_offered: bool) -> tuple[str, str, Command | str]:
    """``(verb, argument)`` as the event log shows them (credentials hidden,
    length capped), then the command on ``line`` (CRLF stripped) or the
    reply refusing it.  After an EHLO that advertised SIZE, MAIL may be
    longer by the SIZE= parameter (RFC 1870 §3)."""
    word, _, rest = line.partition(b" ")
    rest = rest.strip()
    # Interned: every logged reply keeps its verb, and a run logs a few
    # distinct verbs hundreds of thousands of times.
    shown_verb = sys.intern(word[:16].decode("ascii", "replace").upper())
    shown = rest[:200].decode("ascii", "replace")
    if shown_verb == "AUTH":
        shown = shown.split(" ", 1)[0]          # never log credentials
    if not line.strip():
        return shown_verb, shown, R.R_BAD_SYNTAX
    if b"\x00" in line:
        return shown_verb, shown, R.R_NUL
    try:
        verb = word.decode("ascii").upper()
        arg = rest.decode("ascii") or None
    except UnicodeDecodeError:
        return shown_verb, shown, R.R_NOT_ASCII
    limit = base_limit
    if extended and size_offered and verb == "MAIL":
        limit += SIZE_PARAMETER_OCTETS
    if len(line) + 2 > limit:
        return shown_verb, shown, R.R_LINE_TOO_LONG
    return shown_verb, shown, Command(verb, arg)


class Need(Enum):
    """A precondition of a command."""

    GREETED = "greeted"            # HELO/EHLO accepted
    MAIL = "mail"                  # inside a transaction
    NO_MAIL = "no-mail"            # outside a transaction
    RECIPIENT = "recipient"        # at least one recipient accepted
    AUTH_ENABLED = "auth-enabled"  # the server has users


class SessionState(NamedTuple):
    """What the order rules look at."""

    greeted: bool = False
    in_transaction: bool = False
    has_recipients: bool = False
    auth_enabled: bool = False


# Need -> (SessionState field index, value that meets it).
_NEED_FIELDS = {Need.GREETED: (0, True), Need.MAIL: (1, True), Need.NO_MAIL: (1, False),
                Need.RECIPIENT: (2, True), Need.AUTH_ENABLED: (3, True)}


#: Per verb, its preconditions in the order they are checked, each with the
#: reply when it is not met.  Verbs not listed have no order rule of ours
#: (aiosmtpd's own RSET/NOOP/VRFY/HELP/QUIT, and ETRN, whose transaction rule
#: is part of its answer, RFC 1985).
COMMAND_ORDER: dict[str, tuple[tuple[Need, str], ...]] = {
    "MAIL": ((Need.GREETED, R.R_SEND_HELO), (Need.NO_MAIL, R.R_NESTED_MAIL)),
    "RCPT": ((Need.GREETED, R.R_SEND_HELO), (Need.MAIL, R.R_NEED_MAIL)),
    "DATA": ((Need.GREETED, R.R_SEND_HELO), (Need.MAIL, R.R_NEED_MAIL),
             (Need.RECIPIENT, R.R_NEED_RCPT)),
    "AUTH": ((Need.AUTH_ENABLED, R.R_AUTH_DISABLED), (Need.NO_MAIL, R.R_AUTH_IN_TRANSACTION)),
}


# COMMAND_ORDER with each Need as (field index, wanted value), for the hot path.
_ORDER = {verb: tuple((*_NEED_FIELDS[need], reply) for need, reply in rules)
          for verb, rules in COMMAND_ORDER.items()}


def order_refusal(verb: str, state: SessionState) -> str | None:
    """The reply refusing ``verb`` in ``state``, or None if it may run."""
    for field, wanted, reply in _ORDER.get(verb, ()):
        if state[field] != wanted:
            return reply
    return None


def lockdown_refusal(verb: str, client_ip: str) -> str | None:
    """After a refused greeting everything but QUIT gets 503 (RFC 5321 §3.1)."""
    if verb == "QUIT":
        return None
    return R.R_ACCESS_DENIED.format(ip=client_ip)


def ehlo_keywords(hostname: str, *, policy_keywords: Sequence[str], etrn: bool,
                  auth_mechanisms: Sequence[str] | None, starttls: bool = False) -> list[str]:
    """The lines of the EHLO reply, the host name first (RFC 5321 §4.1.1.1).

    ``policy_keywords`` are the chain's (``SIZE n``); ``auth_mechanisms`` is
    None when AUTH is off, else what may be offered now; ``starttls`` when
    STARTTLS may be used now (offered, not yet done: RFC 3207 §4.2)."""
    lines = [hostname, "PIPELINING", *policy_keywords]
    if etrn:
        lines.append("ETRN")                       # RFC 1985
    if starttls:
        lines.append("STARTTLS")                   # RFC 3207
    lines += ["ENHANCEDSTATUSCODES", "8BITMIME"]   # RFC 2034, RFC 6152
    if auth_mechanisms:
        lines.append("AUTH " + " ".join(auth_mechanisms))   # RFC 4954
    lines.append("HELP")
    return lines


#: What may be sent before STARTTLS when the server requires it (RFC 3207 §4).
BEFORE_STARTTLS = frozenset({"EHLO", "HELO", "NOOP", "RSET", "QUIT", "STARTTLS"})


def multiline(code: int, lines: Sequence[str]) -> str:
    """``lines`` as one reply: ``250-a``, ..., ``250 z`` (RFC 5321 §4.2.1)."""
    last = len(lines) - 1
    return "\r\n".join(f"{code}{'-' if i < last else ' '}{x}" for i, x in enumerate(lines))


def split_reply(status: str) -> tuple[int, str]:
    """``(code, text)`` of a reply as the event log keeps it (lines joined by
    LF).  The text is interned: the log keeps every reply, and most are one
    of a few texts (``2.1.0 Ok``, a server's EHLO lines)."""
    lines = status.split("\r\n")
    try:
        code = int(lines[0][:3])
    except ValueError:  # pragma: no cover - our own replies always have codes
        code = 500
    if len(lines) == 1:
        return code, sys.intern(status[4:])
    return code, sys.intern("\n".join(line[4:] for line in lines))


class ErrorCount(NamedTuple):
    """Client errors so far against Postfix's hard error limit.

    A reply of 400 or more counts, unless it was forgiven (a recipient
    refused for the recipient limit, within the overshoot limit).  Once
    ``exhausted``, the session says :data:`~mta.smtp.replies.R_TOO_MANY_ERRORS`
    and closes."""

    limit: int
    errors: int = 0

    def after(self, code: int, forgiven: bool = False) -> "ErrorCount":
        if code >= 400 and not forgiven:
            return ErrorCount(self.limit, self.errors + 1)
        return self

    @property
    def exhausted(self) -> bool:
        return self.errors >= self.limit


def overshoot_forgiven(overshoot: int) -> bool:
    """Whether the ``overshoot``-th "too many recipients" is still no error."""
    return overshoot <= RECIPIENT_OVERSHOOT_LIMIT
