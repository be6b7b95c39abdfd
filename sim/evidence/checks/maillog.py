"""Reading a maillog in Postfix's syslog format against the event log, for
the ``full-logging`` check (seed 003: "Full log files are stored").

The reading is the check's own: it parses lines with Postfix's format (the
contract every Postfix log tool relies on), not with the formatter that
wrote them (:mod:`mta.maillog`), and asks, for what the events say
happened on each judged host, whether the log a provider keeps says so:

* every SMTP connection: a ``connect from NAME[ip]`` and, once closed, a
  ``disconnect from NAME[ip]`` line;
* every policy refusal (a 4xx/5xx decided by a stage): a
  ``NOQUEUE: reject: CMD from NAME[ip]: CODE`` line;
* every accepted message: ``message-id=<id>`` (which gives its queue ID),
  ``QID: client=NAME[ip]`` and ``QID: from=<sender>, size=N``;
* every delivery, deferral, bounce and discard of a recipient:
  ``QID: to=<rcpt>, relay=..., delay=..., delays=..., dsn=..., status=...``;
* every DSN: ``QID: sender non-delivery notification: QID``.

Lines are matched as multisets, so a line removed, or one too few, is
found and named.
"""
from __future__ import annotations

import re
from collections import Counter

from mta import events as E
from sim.evidence.checks.base import cx
from sim.evidence.model import Evidence

LINE = re.compile(r"^(?P<time>\w{3} [ \d]\d \d\d:\d\d:\d\d) (?P<host>\S+) "
                  r"(?P<prog>[\w/.-]+)(?:\[(?P<pid>\d+)\])?: (?P<text>.*)$")
CONNECT = re.compile(r"^(?P<what>connect|disconnect) from [^\[\s]*\[(?P<ip>[^\]]+)\]")
REJECT = re.compile(r"^NOQUEUE: reject: (?P<cmd>[A-Z-]+) from [^\[\s]*\[(?P<ip>[^\]]+)\]: "
                    r"(?P<code>\d{3}) ")
QUEUE = re.compile(r"^(?P<qid>[0-9A-Za-z]{5,}): (?P<rest>.*)$")
STATUS = re.compile(r"^to=<(?P<rcpt>[^>]*)>, .*\bdelay=[\d.]+, delays=[\d./]+, "
                    r"dsn=\d\.\d{1,3}\.\d{1,3}, status=(?P<status>\w+)")

#: The ``status=`` each recipient event must leave.
STATUSES = {E.Relayed: "sent", E.DeliveredToMailbox: "sent", E.Discarded: "sent",
            E.Deferred: "deferred", E.Bounced: "bounced"}
REJECT_COMMANDS = {"CONNECT", "HELO", "EHLO", "MAIL", "RCPT", "DATA", "DATA_END", "ETRN"}


def short(host: str) -> str:
    """A host name as syslog writes it (its first label)."""
    return host.split(".", 1)[0] or host


class Maillog:
    """The parsed lines of one maillog: multisets of what they record."""

    def __init__(self, lines: list[str]) -> None:
        self.unparsed: list[str] = []
        self.conns: Counter = Counter()        # (host, connect|disconnect, ip)
        self.rejects: Counter = Counter()      # (host, cmd, ip, code)
        self.qids: dict[tuple[str, str], list[str]] = {}   # (host, message-id) -> qids
        self.queue: dict[tuple[str, str], list[str]] = {}  # (host, qid) -> texts
        for line in lines:
            m = LINE.match(line)
            if m is None:
                self.unparsed.append(line)
                continue
            host, text = m.group("host"), m.group("text")
            if c := CONNECT.match(text):
                self.conns[(host, c.group("what"), c.group("ip"))] += 1
            elif r := REJECT.match(text):
                self.rejects[(host, r.group("cmd"), r.group("ip"), int(r.group("code")))] += 1
            elif q := QUEUE.match(text):
                qid, rest = q.group("qid"), q.group("rest")
                self.queue.setdefault((host, qid), []).append(rest)
                if rest.startswith("message-id=<"):
                    mid = rest[len("message-id=<"):].rstrip(">")
                    self.qids.setdefault((host, mid), []).append(qid)

    def take(self, counter: Counter, key: tuple) -> bool:
        """Use one line recorded under ``key``; False when none is left."""
        if counter[key] <= 0:
            return False
        counter[key] -= 1
        return True


def judge_maillog(ev: Evidence, lines: list[str], hosts: set[str] | None):
    """Counterexamples and the number of facts judged (module docstring)."""
    log = Maillog(lines)
    cxs: list[dict] = []
    judged = 0

    def want(e) -> bool:
        return hosts is None or e.host in hosts

    def missing(what: str, e, **kw) -> None:
        cxs.append(cx(f"no maillog line for {what}", hosts=[e.host], times=[e.t], events=[e],
                      **kw))

    smtp_conns: dict[str, str] = {}
    for e in ev.in_order(E.ConnectionOpened, E.ConnectionClosed, E.SmtpReply):
        if isinstance(e, E.ConnectionOpened) and e.service == "smtp" and want(e):
            smtp_conns[e.conn] = e.client_ip
            judged += 1
            if not log.take(log.conns, (short(e.host), "connect", e.client_ip)):
                missing(f"connection {e.conn} (connect from [{e.client_ip}])", e)
        elif isinstance(e, E.ConnectionClosed) and e.conn in smtp_conns:
            ip = smtp_conns.pop(e.conn)
            if not log.take(log.conns, (short(e.host), "disconnect", ip)):
                missing(f"the end of connection {e.conn} (disconnect from [{ip}])", e)
        elif isinstance(e, E.SmtpReply) and want(e) and e.code >= 400 and e.stage \
                and e.command.upper() in REJECT_COMMANDS:
            judged += 1
            cmd = "END-OF-MESSAGE" if e.command.upper() == "DATA_END" else e.command.upper()
            if not log.take(log.rejects, (short(e.host), cmd, e.client_ip, e.code)):
                missing(f"the refusal {e.code} to {e.command} from [{e.client_ip}] "
                        f"(NOQUEUE: reject)", e)
    qid_of: dict[tuple[str, str], str] = {}
    qid_by_trace: dict[tuple[str, str], str] = {}
    for e in ev.in_order(E.MessageAccepted, E.MessageSubmitted, *STATUSES, E.DsnCreated):
        if isinstance(e, (E.MessageAccepted, E.MessageSubmitted)) and want(e):
            judged += 1
            got = log.qids.get((short(e.host), e.trace), [])
            if not got:
                missing(f"message {e.msg} (message-id=<{e.trace}>)", e, msg=e.msg, trace=e.trace)
                continue
            qid = got.pop(0)
            qid_of[(e.host, e.msg)] = qid
            qid_by_trace[(e.host, e.trace)] = qid
            texts = log.queue.get((short(e.host), qid), [])
            if not any(t.startswith(f"from=<{e.mail_from}>, size=") for t in texts):
                missing(f"the envelope of {e.msg} ({qid}: from=<{e.mail_from}>, size=...)", e,
                        msg=e.msg, trace=e.trace)
            if isinstance(e, E.MessageAccepted) and \
                    not any(t.startswith("client=") and f"[{e.client_ip}]" in t for t in texts):
                missing(f"the client of {e.msg} ({qid}: client=...[{e.client_ip}])", e,
                        msg=e.msg, trace=e.trace)
        elif type(e) in STATUSES and want(e):
            qid = qid_of.get((e.host, e.msg))
            if qid is None:
                continue                       # its message was not judged (or is named above)
            judged += 1
            status = STATUSES[type(e)]
            texts = log.queue.get((short(e.host), qid), [])
            hit = next((i for i, t in enumerate(texts) if (m := STATUS.match(t))
                        and m.group("rcpt") == e.rcpt and m.group("status") == status), None)
            if hit is None:
                missing(f"{e.kind} of <{e.rcpt}> ({qid}: to=<{e.rcpt}>, ..., status={status})",
                        e, msg=e.msg, trace=e.trace, rcpt=e.rcpt)
            else:
                texts.pop(hit)
        elif isinstance(e, E.DsnCreated) and want(e) and e.action == "failed":
            about = qid_by_trace.get((e.host, e.about_trace))
            if about is None:
                continue
            judged += 1
            texts = log.queue.get((short(e.host), about), [])
            if not any(t.startswith("sender non-delivery notification: ") for t in texts):
                missing(f"the DSN about {about} ({about}: sender non-delivery notification)",
                        e, msg=e.msg, trace=e.trace)
    for line in log.unparsed[:5]:
        cxs.append(cx(f"maillog line not in Postfix's syslog format: {line[:120]!r}"))
    return cxs, judged
