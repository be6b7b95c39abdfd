"""A small builder for hand-written event logs (tests, notebooks, docs).

Each method appends the events a real component would emit for one step,
with the IDs filled in consistently, so a test reads like the story it
checks::

    log = LogBuilder("demo", seed=1)
    log.accept(10, "mx1", "mx1/m1", "t1", ["bob@example.org"])
    log.deliver(12, "mx1", "mx1/m1", "t1", "bob@example.org")
    events = log.end(100)
"""
from __future__ import annotations

from mta import events as E
from sim.evidence.lifecycle import domain_of


class LogBuilder:
    """Appends events in call order (callers keep times non-decreasing)."""

    def __init__(self, scenario: str = "hand", seed: int = 0, t0: float = 0.0) -> None:
        self.events: list[E.Event] = [E.RunStarted(t0, "mxsim", scenario, seed)]
        self._conn = 0

    def add(self, ev: E.Event) -> E.Event:
        self.events.append(ev)
        return ev

    def expect(self, guarantee: str, expected: str = "holds", **params) -> None:
        self.add(E.GuaranteeExpected(self.events[0].t, "mxsim", guarantee, expected, params))

    def link(self, t: float, host: str, up: bool) -> None:
        self.add((E.LinkUp if up else E.LinkDown)(t, host, host))

    def accept(self, t: float, host: str, msg: str, trace: str, rcpts: list[str],
               mail_from: str = "alice@sender.example", client_ip: str = "192.0.2.1",
               helo: str = "client.example", queue: list[str] | None = None,
               held: bool = False, size: int = 1000) -> str:
        """A full SMTP session on ``host`` ending in MessageAccepted; the
        recipients in ``queue`` (default all) are Queued.  Returns conn."""
        self._conn += 1
        conn = f"{host}/c{self._conn}"
        mf, rc = mail_from, []
        self.add(E.ConnectionOpened(t, host, conn, client_ip, 25))
        self.reply(t, host, conn, client_ip, "CONNECT", "", 220, f"{host} ESMTP")
        self.reply(t, host, conn, client_ip, "EHLO", helo, 250, f"{host} SIZE 33554432",
                   helo=helo)
        self.reply(t, host, conn, client_ip, "MAIL", f"FROM:<{mf}>", 250, "2.1.0 OK",
                   helo=helo, mail_from=mf)
        for r in rcpts:
            rc.append(r)
            self.reply(t, host, conn, client_ip, "RCPT", f"TO:<{r}>", 250, "2.1.5 OK",
                       helo=helo, mail_from=mf, rcpts=tuple(rc))
        self.reply(t, host, conn, client_ip, "DATA", "", 354, "End data with <CR><LF>.<CR><LF>",
                   helo=helo, mail_from=mf, rcpts=tuple(rc))
        self.add(E.MessageAccepted(t, host, msg, trace, conn, client_ip, helo, mf,
                                   tuple(rcpts), size))
        self.reply(t, host, conn, client_ip, "DATA_END", "", 250, f"2.0.0 Ok: queued as {msg}",
                   helo=helo, mail_from=mf, rcpts=tuple(rc))
        self.reply(t, host, conn, client_ip, "QUIT", "", 221, "2.0.0 Bye", helo=helo)
        self.add(E.ConnectionClosed(t, host, conn, "quit"))
        for r in (rcpts if queue is None else queue):
            self.queue(t, host, msg, trace, r, held=held)
        return conn

    def reply(self, t, host, conn, client_ip, command, argument, code, text, **kw) -> E.Event:
        return self.add(E.SmtpReply(t, host, conn, client_ip, command, argument, code, text,
                                    **kw))

    def submit(self, t: float, host: str, msg: str, trace: str, rcpts: list[str],
               mail_from: str = "alice@sender.example", origin: str = "local") -> None:
        self.add(E.MessageSubmitted(t, host, msg, trace, mail_from, tuple(rcpts), 1000, origin))
        for r in rcpts:
            self.queue(t, host, msg, trace, r)

    def queue(self, t, host, msg, trace, rcpt, held=False) -> None:
        self.add(E.Queued(t, host, msg, trace, rcpt, domain_of(rcpt), held))

    def attempt(self, t, host, msg, trace, rcpts, dest, pref=None, n=1, outcome="connected",
                dest_ip="198.51.100.1") -> None:
        self.add(E.AttemptStarted(t, host, msg, trace, tuple(rcpts), dest, dest_ip, pref, n))
        self.add(E.ConnectAttempt(t, host, dest, dest_ip, 25, outcome, "deliver", pref))

    def defer(self, t, host, msg, trace, rcpt, next_attempt, code=451,
              text="4.4.1 no answer from host", dest="") -> None:
        self.add(E.Deferred(t, host, msg, trace, rcpt, code, text, next_attempt, dest))

    def relay(self, t, host, msg, trace, rcpt, dest, dest_ip="198.51.100.1") -> None:
        self.add(E.Relayed(t, host, msg, trace, rcpt, dest, dest_ip, 250, "2.0.0 Ok"))

    def deliver(self, t, host, msg, trace, rcpt) -> None:
        self.add(E.DeliveredToMailbox(t, host, msg, trace, rcpt, rcpt.split("@")[0]))

    def bounce(self, t, host, msg, trace, rcpt, sender="alice@sender.example", code=550,
               text="5.1.1 user unknown", reason="rejected", dsn=True, dsn_to=None,
               content_type="multipart/report; report-type=delivery-status",
               dsn_from="") -> str:
        """Bounced (+ DsnCreated unless ``dsn`` is false).  Returns the DSN trace."""
        dsn_trace = f"dsn.{trace}" if dsn else ""
        self.add(E.Bounced(t, host, msg, trace, rcpt, code, text, reason, dsn_trace))
        if dsn:
            self.add(E.DsnCreated(t, host, f"{msg}.dsn", dsn_trace, trace,
                                  sender if dsn_to is None else dsn_to, (rcpt,), "failed",
                                  content_type, dsn_from))
        return dsn_trace

    def discard(self, t, host, msg, trace, rcpt, policy="virus", reason="EICAR") -> None:
        self.add(E.Discarded(t, host, msg, trace, rcpt, policy, reason))

    def end(self, t: float) -> list[E.Event]:
        self.add(E.RunEnded(t, "mxsim"))
        return self.events
