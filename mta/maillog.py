"""The maillog: events as the lines Postfix writes to syslog (seed 003's
"Full log files are stored"), so ordinary log tools and Postfix log
importers read what any role did.

:func:`maillog_lines` is a pure function of an event list (one host's or a
whole run's, in log order); nothing here does I/O, so a simulated run and a
live server write the same lines for the same events.  The format is real
Postfix 3.x syslog, one line per fact::

    Mar 16 00:30:00 relay postfix/smtpd[10001]: connect from unknown[198.51.100.71]
    ... postfix/smtpd[10001]: 000000000B: client=unknown[198.51.100.71], sasl_method=PLAIN, sasl_username=carol
    ... postfix/cleanup[2000]: 000000000B: message-id=<roaming-customer0.1@carol.example.org>
    ... postfix/qmgr[1000]: 000000000B: from=<carol@example.org>, size=4151, nrcpt=1 (queue active)
    ... postfix/smtp[3000]: 000000000B: to=<friend1@example.net>, relay=mx1.example.net[192.0.2.10]:25, delay=0.25, delays=0/0.01/0/0.24, dsn=2.0.0, status=sent (250 2.0.0 Ok)
    ... postfix/qmgr[1000]: 000000000B: removed
    ... postfix/smtpd[10001]: disconnect from unknown[198.51.100.71] ehlo=1 auth=1 mail=1 rcpt=1 data=1 quit=1 commands=6
    ... postfix/smtpd[10002]: NOQUEUE: reject: MAIL from unknown[198.18.9.10]: 530 5.7.0 Authentication required; proto=ESMTP helo=<bot.spam.example>

What the model does not know is written as Postfix writes it without the
information: clients are ``unknown[ip]`` (the simulation has no PTR
records), the ``client=`` line comes with the accepted message rather
than at its first RCPT, and ``delays=a/b/c/d`` puts connection setup into
``d`` (``c`` is 0).  Queue IDs are the queue's counter in hex (10 digits,
Postfix's short form); process IDs are 1000 qmgr, 2000 cleanup, 3000 smtp,
4000 local, 5000 bounce, 6000 discard and 10000 + n for the smtpd of the
n-th connection.  POP3 logins are Dovecot's ``pop3-login: Login:`` lines.
Times are ``epoch + t`` in UTC, whole seconds (traditional syslog).
"""
from __future__ import annotations

import hashlib
import re
import time
from functools import lru_cache
from typing import Callable, Iterable, Iterator

from mta import events as E

#: The commands Postfix counts on its ``disconnect`` line, in its order.
DISCONNECT_COMMANDS = ("helo", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "bdat",
                       "rset", "noop", "vrfy", "etrn", "quit")
#: Replies logged as ``NOQUEUE: reject:`` (Postfix logs policy refusals).
REJECT_COMMANDS = ("CONNECT", "HELO", "EHLO", "MAIL", "RCPT", "DATA", "DATA_END", "ETRN")
_COUNTED = frozenset(DISCONNECT_COMMANDS)
PIDS = {"qmgr": 1000, "cleanup": 2000, "smtp": 3000, "local": 4000, "bounce": 5000,
        "discard": 6000}

_ENHANCED = re.compile(r"^([245])\.\d{1,3}\.\d{1,3}\b")
_COUNTER = re.compile(r"(\d+)$")


@lru_cache(maxsize=4096)    # a message's lines come close together
def queue_id(msg: str) -> str:
    """Postfix's short queue ID for one of our message IDs: the counter in
    hex, 10 digits (a digest when the ID has no counter)."""
    m = _COUNTER.search(msg)
    if m:
        return f"{int(m.group(1)):010X}"
    return hashlib.sha256(msg.encode("utf-8")).hexdigest()[:10].upper()


def syslog_time(t: float, epoch: float) -> str:
    """``Mmm dd HH:MM:SS`` (RFC 3164) of ``epoch + t``, UTC."""
    s = time.gmtime(int(epoch + t))
    return f"{time.strftime('%b', s)} {s.tm_mday:2d} {time.strftime('%H:%M:%S', s)}"


def delay_text(x: float) -> str:
    """A delay as Postfix prints it: two decimals below 1 s, one below
    10 s, whole seconds above; trailing zeros dropped."""
    x = max(x, 0.0)
    if x >= 10:
        return str(int(round(x)))
    text = f"{x:.1f}" if x >= 1 else f"{x:.2f}"
    return text.rstrip("0").rstrip(".") or "0"


@lru_cache(maxsize=1024)    # a world's replies are a few texts, again and again
def dsn_code(code: int, text: str) -> str:
    """The enhanced status code of a reply, else the class's x.0.0."""
    m = _ENHANCED.match(text.strip())
    return m.group(0) if m else f"{code // 100}.0.0"


def _short(host: str) -> str:
    return host.split(".", 1)[0] or host


class MaillogFormatter:
    """The state the lines need, folded event by event: :meth:`lines` gives
    the lines of one event (a live host streams them; :func:`maillog_lines`
    formats a whole log)."""

    def __init__(self, epoch: float) -> None:
        self.epoch = epoch
        # Handler per event class, and the last stamp and host names made:
        # a log is in time order, so consecutive lines share their second,
        # and a world has few hosts (strftime per line was a fifth of the cost).
        self._handlers: dict[type, Callable[[MaillogFormatter, E.Event], list[str]] | None] = {}
        self._second: int | None = None
        self._stamp = ""
        self._shorts: dict[str, str] = {}
        self.smtp_conns: dict[str, tuple[int, str]] = {}      # conn -> (pid, client ip)
        self.commands: dict[str, dict[str, list[int]]] = {}   # conn -> verb -> [ok, total]
        self.sasl: dict[str, str] = {}                        # conn -> ", sasl_method=..."
        # Per host, by message: what a week of mail keeps until the end (a
        # dict per host rather than a (host, msg) tuple per message).
        self.arrived: dict[str, dict[str, float]] = {}       # host -> msg -> arrival
        self.by_trace: dict[str, dict[str, str]] = {}        # host -> trace -> msg
        self.attempt: dict[str, dict[tuple[str, str], float]] = {}  # host -> (msg, rcpt) -> start
        self.open_rcpts: dict[tuple[str, str], int] = {}      # (host, msg) -> not final yet

    def prefix(self, e: E.Event) -> str:
        """``Mmm dd HH:MM:SS host`` of ``e``'s line."""
        second = int(self.epoch + e.t)
        if second != self._second:
            self._second, self._stamp = second, syslog_time(second, 0.0)
        short = self._shorts.get(e.host)
        if short is None:
            short = self._shorts[e.host] = _short(e.host)
        return f"{self._stamp} {short}"

    def line(self, e: E.Event, service: str, pid: int, text: str) -> str:
        return f"{self.prefix(e)} {service}[{pid}]: {text}"

    @staticmethod
    def _of_host(table: dict[str, dict], host: str) -> dict:
        found = table.get(host)
        if found is None:
            found = table[host] = {}
        return found

    def smtpd_pid(self, conn: str) -> int:
        m = _COUNTER.search(conn)
        return 10000 + (int(m.group(1)) if m else 0)

    def handler(self, cls: type) -> Callable[[MaillogFormatter, E.Event], list[str]] | None:
        """The function giving the lines of events of ``cls`` (called with
        the formatter and the event; None: such events have none)."""
        try:
            return self._handlers[cls]
        except KeyError:
            # The class's function, not a bound method: a bound method kept
            # here would make the formatter a cycle, its state (every
            # message's arrival) garbage only for the cycle collector.
            fn = self._handlers[cls] = getattr(type(self), "on_" + cls.kind, None)
            return fn

    def lines(self, e: E.Event) -> list[str]:
        fn = self.handler(e.__class__)
        return fn(self, e) if fn is not None else []

    # -- the SMTP server ------------------------------------------------
    def on_connection_opened(self, e: E.ConnectionOpened) -> list[str]:
        if e.service != "smtp":
            return []
        pid = self.smtpd_pid(e.conn)
        self.smtp_conns[e.conn] = (pid, e.client_ip)
        self.commands[e.conn] = {}
        return [self.line(e, "postfix/smtpd", pid, f"connect from unknown[{e.client_ip}]")]

    def on_smtp_reply(self, e: E.SmtpReply) -> list[str]:
        conn = self.smtp_conns.get(e.conn)
        if conn is None:
            return []
        verb = e.command.lower()
        if verb in _COUNTED:
            counts = self.commands[e.conn].setdefault(verb, [0, 0])
            counts[1] += 1
            counts[0] += e.code < 400
        if e.code < 400 or not e.stage or e.command.upper() not in REJECT_COMMANDS:
            return []
        cmd = "END-OF-MESSAGE" if e.command.upper() == "DATA_END" else e.command.upper()
        env = ""
        if e.mail_from is not None or e.command.upper() == "MAIL":
            sender = e.mail_from if e.mail_from is not None else _address(e.argument)
            env = f"from=<{sender}> "
        if e.command.upper() == "RCPT":
            env += f"to=<{_address(e.argument)}> "
        proto = "ESMTP" if e.helo and self.commands[e.conn].get("ehlo") else "SMTP"
        return [self.line(e, "postfix/smtpd", conn[0],
                          f"NOQUEUE: reject: {cmd} from unknown[{e.client_ip}]: {e.code} "
                          f"{e.text}; {env}proto={proto} helo=<{e.helo}>")]

    def on_policy_decision(self, e: E.PolicyDecision) -> list[str]:
        conn = self.smtp_conns.get(e.conn)
        if conn is None or e.stage != "smtp-auth":
            return []
        fields = dict(kv.split("=", 1) for kv in e.detail.split() if "=" in kv)
        if e.decision == "pass":
            self.sasl[e.conn] = (f", sasl_method={fields.get('mechanism', '')}, "
                                 f"sasl_username={fields.get('user', '')}")
            return []
        return [self.line(e, "postfix/smtpd", conn[0],
                          f"warning: unknown[{e.client_ip}]: SASL "
                          f"{fields.get('mechanism', '')} authentication failed")]

    def on_connection_closed(self, e: E.ConnectionClosed) -> list[str]:
        conn = self.smtp_conns.pop(e.conn, None)
        if conn is None:
            return []
        counts = self.commands.pop(e.conn, {})
        self.sasl.pop(e.conn, None)
        parts = [f"{v}={_ok_total(*counts[v])}" for v in DISCONNECT_COMMANDS if v in counts]
        ok, total = sum(c[0] for c in counts.values()), sum(c[1] for c in counts.values())
        parts.append(f"commands={_ok_total(ok, total)}")
        return [self.line(e, "postfix/smtpd", conn[0],
                          f"disconnect from unknown[{conn[1]}] {' '.join(parts)}")]

    # -- the queue ------------------------------------------------------
    def _arrive(self, e, mail_from: str, size: int, nrcpt: int) -> list[str]:
        self._of_host(self.arrived, e.host)[e.msg] = float(e.t)
        self._of_host(self.by_trace, e.host)[e.trace] = e.msg
        qid = queue_id(e.msg)
        return [self.line(e, "postfix/cleanup", PIDS["cleanup"], f"{qid}: message-id=<{e.trace}>"),
                self.line(e, "postfix/qmgr", PIDS["qmgr"],
                          f"{qid}: from=<{mail_from}>, size={size}, nrcpt={nrcpt} "
                          f"(queue active)")]

    def on_message_accepted(self, e: E.MessageAccepted) -> list[str]:
        pid = self.smtp_conns.get(e.conn, (self.smtpd_pid(e.conn), e.client_ip))[0]
        client = self.line(e, "postfix/smtpd", pid, f"{queue_id(e.msg)}: client=unknown"
                                                     f"[{e.client_ip}]{self.sasl.get(e.conn, '')}")
        return [client] + self._arrive(e, e.mail_from, e.size, len(e.rcpts))

    def on_message_submitted(self, e: E.MessageSubmitted) -> list[str]:
        return self._arrive(e, e.mail_from, e.size, len(e.rcpts))

    def on_queued(self, e: E.Queued) -> list[str]:
        key = (e.host, e.msg)
        self.open_rcpts[key] = self.open_rcpts.get(key, 0) + 1
        return []

    def on_attempt_started(self, e: E.AttemptStarted) -> list[str]:
        for r in e.rcpts:
            self._of_host(self.attempt, e.host)[(e.msg, r)] = float(e.t)
        return []

    def _delivery(self, e, service: str, relay: str, code: int, text: str, status: str,
                  final: bool = True) -> list[str]:
        key = (e.host, e.msg)
        arrived = self.arrived.get(e.host, {}).get(e.msg, float(e.t))
        started = self.attempt.get(e.host, {}).get((e.msg, e.rcpt), float(e.t))
        delays = f"0/{delay_text(started - arrived)}/0/{delay_text(e.t - started)}"
        qid = queue_id(e.msg)
        out = [self.line(e, service, PIDS[service.split("/")[1]],
                         f"{qid}: to=<{e.rcpt}>, relay={relay}, delay={delay_text(e.t - arrived)}, "
                         f"delays={delays}, dsn={dsn_code(code, text)}, status={status}")]
        if final and key in self.open_rcpts:
            self.open_rcpts[key] -= 1
            if self.open_rcpts[key] <= 0:
                del self.open_rcpts[key]
                out.append(self.line(e, "postfix/qmgr", PIDS["qmgr"], f"{qid}: removed"))
        return out

    def on_relayed(self, e: E.Relayed) -> list[str]:
        return self._delivery(e, "postfix/smtp", f"{e.dest_host}[{e.dest_ip}]:25", e.code, e.text,
                              f"sent ({e.code} {e.text})")

    def on_delivered_to_mailbox(self, e: E.DeliveredToMailbox) -> list[str]:
        return self._delivery(e, "postfix/local", "local", 250, "2.0.0",
                              "sent (delivered to mailbox)")

    def on_deferred(self, e: E.Deferred) -> list[str]:
        relay = f"{e.dest_host}:25" if e.dest_host else "none"
        return self._delivery(e, "postfix/smtp", relay, e.code, e.text,
                              f"deferred ({e.code} {e.text})", final=False)

    def on_bounced(self, e: E.Bounced) -> list[str]:
        return self._delivery(e, "postfix/smtp", "none", e.code, e.text,
                              f"bounced ({e.code} {e.text})")

    def on_discarded(self, e: E.Discarded) -> list[str]:
        return self._delivery(e, "postfix/discard", "none", 250, "2.0.0",
                              f"sent ({e.policy}: {e.reason})")

    def on_dsn_created(self, e: E.DsnCreated) -> list[str]:
        about = self.by_trace.get(e.host, {}).get(e.about_trace)
        if about is None:
            return []
        what = "non-delivery" if e.action == "failed" else "delay"
        return [self.line(e, "postfix/bounce", PIDS["bounce"],
                          f"{queue_id(about)}: sender {what} notification: {queue_id(e.msg)}")]

    # -- a restart (live hosts) ---------------------------------------------
    def on_host_restarted(self, e: E.HostRestarted) -> list[str]:
        return [f"{self.prefix(e)} postfix/master[1]: "
                f"daemon started -- {e.recovered} messages recovered from the queue"]

    # -- POP3 -------------------------------------------------------------
    def on_pop3_login(self, e: E.Pop3Login) -> list[str]:
        return [f"{self.prefix(e)} dovecot: pop3-login: Login: "
                f"user=<{e.user}>, method=PLAIN, rip={e.client_ip}"]


def _ok_total(ok: int, total: int) -> str:
    return str(ok) if ok == total else f"{ok}/{total}"


def _address(argument: str) -> str:
    """The address in ``FROM:<a@b> SIZE=1`` or ``TO:<a@b>``."""
    a = argument.split(":", 1)[1] if ":" in argument else argument
    a = a.strip()
    if a.startswith("<"):
        return a[1:a.find(">")] if ">" in a else a[1:]
    return a.split(" ", 1)[0]


def maillog_lines(events: Iterable[E.Event], epoch: float = 0.0) -> Iterator[str]:
    """The maillog of ``events`` (in log order): Postfix syslog lines,
    without newlines, as they are made (a week's maillog is written as a
    stream, never held whole).  ``epoch`` is added to every event time (0
    for live events, which carry Unix time)."""
    f = MaillogFormatter(epoch)
    handler = f.handler
    for e in events:
        fn = handler(e.__class__)
        if fn is not None:
            yield from fn(f, e)
