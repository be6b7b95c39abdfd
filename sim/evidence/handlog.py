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
from sim.events import GuaranteeExpected, LinkDown, LinkUp, RunEnded, RunStarted
from sim.evidence.lifecycle import domain_of


class LogBuilder:
    """Appends events in call order (callers keep times non-decreasing)."""

    def __init__(self, scenario: str = "hand", seed: int = 0, t0: float = 0.0) -> None:
        self.events: list[E.Event] = [RunStarted(t=t0, host="mxsim", scenario=scenario, seed=seed)]
        self._conn = 0

    def add(self, ev: E.Event) -> E.Event:
        self.events.append(ev)
        return ev

    def expect(self, guarantee: str, expected: str = "holds", **params) -> None:
        self.add(GuaranteeExpected(t=self.events[0].t, host="mxsim", guarantee=guarantee,
                                   expected=expected, params=params))

    def link(self, t: float, host: str, up: bool) -> None:
        self.add((LinkUp if up else LinkDown)(t=t, host=host, link=host))

    def accept(self, t: float, host: str, msg: str, trace: str, rcpts: list[str],
               mail_from: str = "alice@sender.example", client_ip: str = "192.0.2.1",
               helo: str = "client.example", queue: list[str] | None = None,
               held: bool = False, size: int = 1000) -> str:
        """A full SMTP session on ``host`` ending in MessageAccepted; the
        recipients in ``queue`` (default all) are Queued.  Returns conn."""
        self._conn += 1
        conn = f"{host}/c{self._conn}"
        mf, rc = mail_from, []
        self.add(E.ConnectionOpened(t=t, host=host, conn=conn, client_ip=client_ip, port=25))
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
        self.add(E.MessageAccepted(t=t, host=host, msg=msg, trace=trace, conn=conn,
                                   client_ip=client_ip, helo=helo, mail_from=mf,
                                   rcpts=tuple(rcpts), size=size))
        self.reply(t, host, conn, client_ip, "DATA_END", "", 250, f"2.0.0 Ok: queued as {msg}",
                   helo=helo, mail_from=mf, rcpts=tuple(rc))
        self.reply(t, host, conn, client_ip, "QUIT", "", 221, "2.0.0 Bye", helo=helo)
        self.add(E.ConnectionClosed(t=t, host=host, conn=conn, reason="quit"))
        for r in (rcpts if queue is None else queue):
            self.queue(t, host, msg, trace, r, held=held)
        return conn

    def reply(self, t, host, conn, client_ip, command, argument, code, text, **kw) -> E.Event:
        return self.add(E.SmtpReply(t=t, host=host, conn=conn, client_ip=client_ip,
                                    command=command, argument=argument, code=code, text=text,
                                    **kw))

    def submit(self, t: float, host: str, msg: str, trace: str, rcpts: list[str],
               mail_from: str = "alice@sender.example", origin: str = "local") -> None:
        self.add(E.MessageSubmitted(t=t, host=host, msg=msg, trace=trace, mail_from=mail_from,
                                    rcpts=tuple(rcpts), size=1000, origin=origin))
        for r in rcpts:
            self.queue(t, host, msg, trace, r)

    def queue(self, t, host, msg, trace, rcpt, held=False) -> None:
        self.add(E.Queued(t=t, host=host, msg=msg, trace=trace, rcpt=rcpt, domain=domain_of(rcpt),
                          held=held))

    def attempt(self, t, host, msg, trace, rcpts, dest, pref=None, n=1, outcome="connected",
                dest_ip="198.51.100.1") -> None:
        self.add(E.AttemptStarted(t=t, host=host, msg=msg, trace=trace, rcpts=tuple(rcpts),
                                  dest_host=dest, dest_ip=dest_ip, preference=pref, attempt=n))
        self.add(E.ConnectAttempt(t=t, host=host, dest_host=dest, dest_ip=dest_ip, port=25,
                                  outcome=outcome, purpose="deliver", preference=pref))

    def defer(self, t, host, msg, trace, rcpt, next_attempt, code=451,
              text="4.4.1 no answer from host", dest="") -> None:
        self.add(E.Deferred(t=t, host=host, msg=msg, trace=trace, rcpt=rcpt, code=code, text=text,
                            next_attempt=next_attempt, dest_host=dest))

    def relay(self, t, host, msg, trace, rcpt, dest, dest_ip="198.51.100.1") -> None:
        self.add(E.Relayed(t=t, host=host, msg=msg, trace=trace, rcpt=rcpt, dest_host=dest,
                           dest_ip=dest_ip, code=250, text="2.0.0 Ok"))

    def deliver(self, t, host, msg, trace, rcpt) -> None:
        self.add(E.DeliveredToMailbox(t=t, host=host, msg=msg, trace=trace, rcpt=rcpt,
                                      mailbox=rcpt.split("@")[0]))

    def bounce(self, t, host, msg, trace, rcpt, sender="alice@sender.example", code=550,
               text="5.1.1 user unknown", reason="rejected", dsn=True, dsn_to=None,
               content_type="multipart/report; report-type=delivery-status",
               dsn_from="") -> str:
        """Bounced (+ DsnCreated unless ``dsn`` is false).  Returns the DSN trace."""
        dsn_trace = f"dsn.{trace}" if dsn else ""
        self.add(E.Bounced(t=t, host=host, msg=msg, trace=trace, rcpt=rcpt, code=code, text=text,
                           reason=reason, dsn_trace=dsn_trace))
        if dsn:
            self.add(E.DsnCreated(t=t, host=host, msg=f"{msg}.dsn", trace=dsn_trace,
                                  about_trace=trace, to=sender if dsn_to is None else dsn_to,
                                  rcpts=(rcpt,), action="failed", content_type=content_type,
                                  mail_from=dsn_from))
        return dsn_trace

    def discard(self, t, host, msg, trace, rcpt, policy="virus", reason="EICAR") -> None:
        self.add(E.Discarded(t=t, host=host, msg=msg, trace=trace, rcpt=rcpt, policy=policy,
                             reason=reason))

    def end(self, t: float) -> list[E.Event]:
        self.add(RunEnded(t=t, host="mxsim"))
        return self.events
