"""One POP3 session as a pure state machine (no I/O, no clock, no loop).

:class:`Pop3Session` is fed one command line at a time (``handle``) and
answers a :class:`Step`: the bytes to send, whether to close (and why) or
start TLS afterwards, how long to wait before sending (a failed-login delay), and the
:class:`Fact` records the edge turns into events.  Which command is legal
in which state comes from :data:`mta.pop3.commands.COMMANDS`.

The maildrop is snapshotted at login; DELE only marks, RSET unmarks, and
the marked messages are removed from the store only by QUIT in the
TRANSACTION state (RFC 1939 §6, the UPDATE state).  :meth:`Pop3Session.end`
releases the lock however the session ended, deleting nothing.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Mapping

from mta.pop3 import commands as C
from mta.pop3.maildrop import MaildropLocks, Maildrops
from mta.pop3.throttle import LoginThrottle


@dataclass(frozen=True, slots=True)
class Account:
    """A POP3 user: the password and the maildrop it reads."""

    password: str
    mailbox: str


def accounts_from(users: Mapping[str, str],
                  mailboxes: Mapping[str, str] | None = None) -> dict[str, Account]:
    """``{user: password}`` plus ``{user: mailbox}`` (default: the user
    name is the mailbox) as :class:`Account` records."""
    mailboxes = mailboxes or {}
    unknown = sorted(set(mailboxes) - set(users))
    if unknown:
        raise ValueError(f"mailboxes given for users without a password: {unknown}")
    return {u: Account(p, mailboxes.get(u, u)) for u, p in sorted(users.items())}


@dataclass(frozen=True, slots=True)
class Fact:
    """Something the session did that belongs on the record.

    ``what`` is one of ``login`` (``user``, ``mailbox``, ``detail`` = the
    mechanism), ``login-failed`` (``detail`` = mechanism and failure count),
    ``delay`` (a throttled reply), ``cut-off`` (too many failures),
    ``in-use`` (the maildrop was locked), ``update`` (``detail`` = deleted
    and kept counts) and ``store-error`` (``detail`` = the exception).
    """

    what: str
    user: str = ""
    mailbox: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Step:
    """The session's answer to one line."""

    reply: bytes
    close: str = ""          # non-empty: close after sending, for this reason
    start_tls: bool = False
    delay: float = 0.0
    facts: tuple[Fact, ...] = ()


@dataclass(frozen=True, slots=True)
class _Msg:
    uid: str
    lines: list[bytes]
    size: int


def apop_digest(timestamp: str, secret: str) -> str:
    """RFC 1939 §7: lower-case hex MD5 of the greeting timestamp + secret."""
    return hashlib.md5((timestamp + secret).encode("utf-8")).hexdigest()


class Pop3Session:
    """The protocol state of one connection.

    ``timestamp`` is the greeting's ``<...>`` (APOP's challenge; ``""``
    disables APOP).  ``tls_offered``: STLS is advertised and accepted until
    TLS is running.  ``throttle`` is shared by the server's sessions.
    """

    def __init__(self, *, hostname: str, conn: str, client_ip: str,
                 accounts: Mapping[str, Account], drops: Maildrops, locks: MaildropLocks,
                 throttle: LoginThrottle, timestamp: str = "", tls_offered: bool = False,
                 implementation: str = "mxsim") -> None:
        self.hostname = hostname
        self.conn = conn
        self.client_ip = client_ip
        self.accounts = accounts
        self.drops = drops
        self.locks = locks
        self.throttle = throttle
        self.timestamp = timestamp
        self.tls_offered = tls_offered
        self.tls = False
        self.implementation = implementation
        self.state = C.AUTHORIZATION
        self.pending_user: str | None = None   # USER accepted, PASS awaited
        self.user = ""
        self.mailbox = ""
        self.failures = 0
        self.msgs: list[_Msg] = []
        self.deleted: set[int] = set()

    # -- entry points ----------------------------------------------------------
    def greeting(self) -> bytes:
        stamp = f" {self.timestamp}" if self.timestamp else ""
        return C.ok(f"{self.hostname} POP3 server ready{stamp}")

    def handle(self, line: bytes, now: float) -> Step:
        """Answer one command line (without its CRLF) received at ``now``."""
        if self.state == C.UPDATE:
            return Step(C.err(C.E_STATE), close="quit")
        parsed = C.parse_line(line)
        if isinstance(parsed, C.SyntaxProblem):
            return Step(C.err(parsed.reply))
        if not C.legal_in(parsed.name, self.state, self.pending_user is not None):
            text = C.E_NO_USER if parsed.name == "PASS" and self.state == C.AUTHORIZATION else C.E_STATE
            return Step(C.err(text))
        step: Step = getattr(self, "_do_" + parsed.name.lower())(parsed.args, now)
        return step

    def too_long(self) -> Step:
        """The answer to a line over RFC 2449's 255 octets (it is skipped)."""
        if self.state == C.AUTHORIZATION:
            self.pending_user = None        # a half-read PASS must not complete a login
        return Step(C.err(C.E_TOO_LONG))

    def tls_started(self) -> None:
        """TLS is up: forget everything from before it (RFC 2595 §4)."""
        self.tls = True
        self.pending_user = None

    def end(self) -> None:
        """The connection is gone (any reason): release the maildrop lock.
        Nothing is deleted unless QUIT already ran the UPDATE state."""
        if self.mailbox:
            self.locks.release(self.mailbox, self.conn)

    # -- AUTHORIZATION -----------------------------------------------------------
    def _do_user(self, args: tuple[str, ...], now: float) -> Step:
        # Every name is accepted: refusing unknown ones here would tell a
        # guesser which accounts exist.  The check happens at PASS.
        self.pending_user = args[0]
        return Step(C.ok("send PASS"))

    def _do_pass(self, args: tuple[str, ...], now: float) -> Step:
        user, self.pending_user = self.pending_user or "", None
        acct = self.accounts.get(user)
        good = acct is not None and hmac.compare_digest(
            acct.password.encode("utf-8"), args[0].encode("utf-8"))
        return self._login(user, "USER", good, now)

    def _do_apop(self, args: tuple[str, ...], now: float) -> Step:
        self.pending_user = None
        if not self.timestamp:
            return Step(C.err(C.E_APOP))
        user, digest = args
        acct = self.accounts.get(user)
        good = acct is not None and hmac.compare_digest(
            apop_digest(self.timestamp, acct.password), digest.lower())
        return self._login(user, "APOP", good, now)

    def _do_stls(self, args: tuple[str, ...], now: float) -> Step:
        if not self.tls_offered or self.tls:
            return Step(C.err(C.E_NO_TLS))
        return Step(C.ok("Begin TLS negotiation"), start_tls=True)

    def _login(self, user: str, mech: str, good: bool, now: float) -> Step:
        if not good:
            self.failures += 1
            delay = self.throttle.record_failure(self.client_ip, now)
            facts = [Fact("login-failed", user, detail=f"{mech} failure {self.failures}")]
            if delay:
                facts.append(Fact("delay", user, detail=f"{delay:g}s"))
            if self.throttle.cut_off(self.failures):
                facts.append(Fact("cut-off", user, detail=f"{self.failures} failures"))
                return Step(C.err(C.E_TOO_MANY), close="cut-off", delay=delay, facts=tuple(facts))
            return Step(C.err(C.E_AUTH), delay=delay, facts=tuple(facts))
        acct = self.accounts[user]
        if not self.locks.acquire(acct.mailbox, self.conn):
            return Step(C.err(C.E_IN_USE), facts=(Fact("in-use", user, acct.mailbox),))
        try:
            listing = self.drops.listing(acct.mailbox)
        except Exception as exc:  # noqa: BLE001 - the store's failure is the client's -ERR
            self.locks.release(acct.mailbox, self.conn)
            return Step(C.err("[SYS/TEMP] unable to open maildrop"),
                        facts=(Fact("store-error", user, acct.mailbox, f"{type(exc).__name__}: {exc}"),))
        self.msgs = []
        for m in listing:
            lines = C.wire_lines(m.data)
            self.msgs.append(_Msg(m.uid, lines, C.wire_size(lines)))
        self.user, self.mailbox, self.state = user, acct.mailbox, C.TRANSACTION
        count, size = self._totals()
        return Step(C.ok(f"{user}'s maildrop has {count} messages ({size} octets)"),
                    facts=(Fact("login", user, acct.mailbox, mech),))

    # -- either state ----------------------------------------------------------------
    def _do_capa(self, args: tuple[str, ...], now: float) -> Step:
        stls = self.tls_offered and not self.tls and self.state == C.AUTHORIZATION
        caps = C.capabilities(stls=stls, implementation=self.implementation)
        return Step(C.multiline("Capability list follows", caps))

    def _do_quit(self, args: tuple[str, ...], now: float) -> Step:
        if self.state == C.AUTHORIZATION:
            return Step(C.ok(f"{self.hostname} POP3 server signing off"), close="quit")
        self.state = C.UPDATE
        gone = [self.msgs[i].uid for i in sorted(self.deleted)]
        try:
            removed = self.drops.delete(self.mailbox, gone) if gone else 0
        except Exception as exc:  # noqa: BLE001 - reported, then the session ends
            self.end()
            return Step(C.err(C.E_UPDATE), close="quit",
                        facts=(Fact("store-error", self.user, self.mailbox, f"{type(exc).__name__}: {exc}"),))
        self.end()
        kept = len(self.msgs) - len(self.deleted)
        return Step(C.ok(f"{self.hostname} POP3 server signing off ({kept} messages left)"),
                    close="quit",
                    facts=(Fact("update", self.user, self.mailbox, f"deleted {removed} kept {kept}"),))

    # -- TRANSACTION -------------------------------------------------------------------
    def _totals(self) -> tuple[int, int]:
        live = [m for i, m in enumerate(self.msgs) if i not in self.deleted]
        return len(live), sum(m.size for m in live)

    def _pick(self, arg: str) -> int | str:
        """The 0-based index of message ``arg``, or the -ERR text."""
        n = C.parse_number(arg)
        if n is None:
            return C.E_NUMBER
        if not 1 <= n <= len(self.msgs):
            return C.E_NO_MSG
        if n - 1 in self.deleted:
            return C.E_DELETED
        return n - 1

    def _do_stat(self, args: tuple[str, ...], now: float) -> Step:
        count, size = self._totals()
        return Step(C.ok(f"{count} {size}"))

    def _scan(self, args: tuple[str, ...], field: str) -> Step:
        value = (lambda m: str(m.size)) if field == "size" else (lambda m: m.uid)
        if args:
            i = self._pick(args[0])
            if isinstance(i, str):
                return Step(C.err(i))
            return Step(C.ok(f"{i + 1} {value(self.msgs[i])}"))
        count, size = self._totals()
        rows = [f"{i + 1} {value(m)}".encode("ascii") for i, m in enumerate(self.msgs)
                if i not in self.deleted]
        head = f"{count} messages ({size} octets)" if field == "size" else "unique-id listing follows"
        return Step(C.multiline(head, rows))

    def _do_list(self, args: tuple[str, ...], now: float) -> Step:
        return self._scan(args, "size")

    def _do_uidl(self, args: tuple[str, ...], now: float) -> Step:
        return self._scan(args, "uid")

    def _do_retr(self, args: tuple[str, ...], now: float) -> Step:
        i = self._pick(args[0])
        if isinstance(i, str):
            return Step(C.err(i))
        m = self.msgs[i]
        return Step(C.multiline(f"{m.size} octets", m.lines))

    def _do_top(self, args: tuple[str, ...], now: float) -> Step:
        i = self._pick(args[0])
        if isinstance(i, str):
            return Step(C.err(i))
        n = C.parse_number(args[1])
        if n is None:
            return Step(C.err(C.E_LINES))
        return Step(C.multiline("top of message follows", C.top_lines(self.msgs[i].lines, n)))

    def _do_dele(self, args: tuple[str, ...], now: float) -> Step:
        i = self._pick(args[0])
        if isinstance(i, str):
            return Step(C.err(i))
        self.deleted.add(i)
        return Step(C.ok(f"message {i + 1} deleted"))

    def _do_rset(self, args: tuple[str, ...], now: float) -> Step:
        self.deleted.clear()
        count, size = self._totals()
        return Step(C.ok(f"maildrop has {count} messages ({size} octets)"))

    def _do_noop(self, args: tuple[str, ...], now: float) -> Step:
        return Step(C.ok())
