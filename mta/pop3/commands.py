"""The POP3 grammar as data: states, commands, reply texts, wire format.

RFC 1939 defines three states (AUTHORIZATION, TRANSACTION, UPDATE) and
says which command is legal in which; :data:`COMMANDS` is that table, with
each command's argument count, so the session never needs an ``if`` chain
to decide whether a command is in state.  RFC 2449 adds CAPA, the 255-octet
command line limit and bracketed response codes; RFC 2595 adds STLS.

Nothing here does I/O.  :func:`parse_line` turns one received line into a
:class:`Command` or a :class:`SyntaxProblem`, never raising.
"""
from __future__ import annotations

from dataclasses import dataclass

# -- states (RFC 1939 §3) ----------------------------------------------------
AUTHORIZATION = "AUTHORIZATION"
TRANSACTION = "TRANSACTION"
UPDATE = "UPDATE"

#: RFC 2449 §4: a command line is at most 255 octets including the CRLF.
MAX_LINE = 255
#: RFC 1939 §3: each argument may be up to 40 characters long.
MAX_ARG = 40


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """Where a command is legal and how many arguments it takes.

    ``after_user``: legal only right after a successful USER (PASS).
    ``rest``: the last argument runs to the end of the line, spaces
    included (RFC 1939 §7 allows this for PASS), with no length limit.
    """

    states: frozenset[str]
    min_args: int = 0
    max_args: int = 0
    after_user: bool = False
    rest: bool = False


_A, _T = frozenset({AUTHORIZATION}), frozenset({TRANSACTION})
_AT = _A | _T

#: RFC 1939 §§4-7, RFC 2449 §5 (CAPA), RFC 2595 §4 (STLS).
COMMANDS: dict[str, CommandSpec] = {
    "USER": CommandSpec(_A, 1, 1),
    "PASS": CommandSpec(_A, 1, 1, after_user=True, rest=True),
    "APOP": CommandSpec(_A, 2, 2),
    "STLS": CommandSpec(_A),
    "CAPA": CommandSpec(_AT),
    "QUIT": CommandSpec(_AT),
    "STAT": CommandSpec(_T),
    "LIST": CommandSpec(_T, 0, 1),
    "UIDL": CommandSpec(_T, 0, 1),
    "RETR": CommandSpec(_T, 1, 1),
    "TOP": CommandSpec(_T, 2, 2),
    "DELE": CommandSpec(_T, 1, 1),
    "RSET": CommandSpec(_T),
    "NOOP": CommandSpec(_T),
}

# -- reply texts (after "+OK " / "-ERR ") -------------------------------------
# Response codes: RFC 2449 §8 (IN-USE, LOGIN-DELAY), RFC 3206 (SYS/TEMP,
# SYS/PERM, AUTH).  A bracketed code is only sent because CAPA announces
# RESP-CODES and AUTH-RESP-CODE.
E_UNKNOWN = "unknown command"
E_STATE = "command not valid in this state"
E_ARGS = "wrong number of arguments"
E_SYNTAX = "bad command syntax"
E_TOO_LONG = "line too long (RFC 2449: 255 octets)"
E_ENCODING = "command is not valid UTF-8 text"
E_NO_USER = "send USER first"
E_AUTH = "[AUTH] authentication failed"
E_IN_USE = "[IN-USE] maildrop already locked by another session"
E_TOO_MANY = "[AUTH] too many authentication failures, closing connection"
E_NO_MSG = "no such message"
E_DELETED = "message already deleted"
E_NUMBER = "invalid message number"
E_LINES = "invalid number of lines"
E_NO_TLS = "STLS not available"
E_TIMEOUT = "autologout: idle for too long"
E_UPDATE = "[SYS/TEMP] some deleted messages were not removed"
E_APOP = "APOP not available"


@dataclass(frozen=True, slots=True)
class Command:
    """A well-formed command line: upper-case keyword, its arguments."""

    name: str
    args: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SyntaxProblem:
    """A line that is not a command; ``reply`` is the ``-ERR`` text.
    ``name`` is the keyword if one could be read (for the record)."""

    reply: str
    name: str = ""


def parse_line(line: bytes) -> Command | SyntaxProblem:
    """Parse one line without its CRLF.  Keywords are case-insensitive and
    3-4 characters; arguments are separated by single spaces (RFC 1939 §3),
    although runs of spaces are tolerated as most servers do."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return SyntaxProblem(E_ENCODING)
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        return SyntaxProblem(E_SYNTAX)
    keyword, _, rest = text.partition(" ")
    name = keyword.upper()
    if not (3 <= len(name) <= 4 and name.isascii() and name.isalpha()):
        return SyntaxProblem(E_UNKNOWN if keyword else E_SYNTAX)
    spec = COMMANDS.get(name)
    if spec is None:
        return SyntaxProblem(E_UNKNOWN, name)
    if spec.rest:
        args: tuple[str, ...] = (rest,) if rest else ()
    else:
        args = tuple(rest.split())
        if any(len(a) > MAX_ARG for a in args):
            return SyntaxProblem(E_SYNTAX, name)
    if not spec.min_args <= len(args) <= spec.max_args:
        return SyntaxProblem(E_ARGS, name)
    return Command(name, args)


def legal_in(name: str, state: str, user_given: bool) -> bool:
    """Whether ``name`` may be used now (from :data:`COMMANDS`)."""
    spec = COMMANDS[name]
    return state in spec.states and (user_given or not spec.after_user)


def parse_number(arg: str) -> int | None:
    """A message number or line count: plain decimal digits, else None."""
    if not arg.isascii() or not arg.isdigit():
        return None
    return int(arg)


# -- wire format ---------------------------------------------------------------

def ok(text: str = "") -> bytes:
    return b"+OK " + text.encode("utf-8") + b"\r\n" if text else b"+OK\r\n"


def err(text: str) -> bytes:
    return b"-ERR " + text.encode("utf-8") + b"\r\n"


def multiline(first: str, lines: list[bytes]) -> bytes:
    """``+OK first``, the lines dot-stuffed (RFC 1939 §3), then ``.``."""
    out = [ok(first)]
    for ln in lines:
        out.append(b"." + ln + b"\r\n" if ln.startswith(b".") else ln + b"\r\n")
    out.append(b".\r\n")
    return b"".join(out)


def wire_lines(data: bytes) -> list[bytes]:
    """A stored message as the lines POP3 sends: any CR, LF or CRLF ends a
    line (stored bodies may use bare LF); a last line without its
    terminator still counts."""
    lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def wire_size(lines: list[bytes]) -> int:
    """The octet count LIST and STAT report: the message with CRLF line
    ends, before dot-stuffing (what ``poplib`` counts after unstuffing)."""
    return sum(len(ln) + 2 for ln in lines)


def top_lines(lines: list[bytes], n: int) -> list[bytes]:
    """The header, the blank line and the first ``n`` body lines (TOP)."""
    try:
        blank = lines.index(b"")
    except ValueError:          # no body at all: the whole thing is header
        return list(lines)
    return lines[:blank + 1 + n]


def capabilities(*, stls: bool, implementation: str) -> list[bytes]:
    """The CAPA listing (RFC 2449 §6): only what this session offers now.
    APOP has no tag of its own; the greeting's timestamp announces it."""
    caps = [b"TOP", b"USER", b"UIDL", b"RESP-CODES", b"AUTH-RESP-CODE", b"PIPELINING",
            b"EXPIRE NEVER"]
    if stls:
        caps.append(b"STLS")
    if implementation:
        caps.append(b"IMPLEMENTATION " + implementation.encode("ascii", "replace"))
    return caps
