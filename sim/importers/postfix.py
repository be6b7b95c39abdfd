"""Real Postfix logs as mxsim's event log, to be judged like a run.

:func:`import_logs` reads the lines (:mod:`sim.importers.syslog`), says
what each states (:mod:`sim.importers.postfix_lines`), gathers them per
queue file (host and queue ID; an ID used again after ``removed`` is a new
message, named ``QID~2``), and writes the mail events of :mod:`mta.events`
the evidence layer reads:

* ``MessageAccepted`` (``client=`` seen: received over SMTP) or
  ``MessageSubmitted`` (``local`` from pickup, ``dsn`` for a notification
  Postfix made), at qmgr's first ``from=`` line, with every recipient the
  log names in a ``to=`` line, and a ``Queued`` per recipient;
* per delivery line an ``AttemptStarted`` (at the line's time less the
  connection and transmission parts of ``delays=``) and its result:
  ``Relayed`` (smtp, lmtp), ``DeliveredToMailbox`` (local, virtual, pipe),
  ``Discarded`` (the discard transport), ``Deferred`` or ``Bounced``
  (``rejected``); a ``status=expired`` message bounces its undelivered
  recipients (``expired``, with the last deferral's reply); address
  verification probes (``status=deliverable|undeliverable``) are left out;
* per ``sender non-delivery notification`` a ``DsnCreated`` (``failed``,
  ``multipart/report``, from ``<>`` to the sender: what Postfix's bounce
  daemon sends) for the recipients bounced so far, and ``delayed`` for a
  delay notification.

Times are seconds since the first line (the absolute span is in the
report's description).  What the log cannot say stays out: HELO names,
the time Postfix scheduled the next try (``Deferred.next_attempt`` is the
next try the log shows, else the deferral's own time), and recipients of a
message never tried before the log ends (counted in ``notes``).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterable

from mta import events as E
from sim.events import GuaranteeExpected, RunEnded, RunStarted, ScenarioDescribed
from sim.evidence.lifecycle import domain_of
from sim.importers import postfix_lines as P
from sim.importers.syslog import LogLine, YearTracker, is_postfix, parse_line

#: The runner's host name in the log (as for simulated runs).
RUNNER = "mxsim"
_MAILBOX_AGENTS = ("local", "virtual", "pipe")
#: What the delivery agents log for verify(8)'s probes instead of sent or bounced.
_PROBE_RESULTS = ("deliverable", "undeliverable")


class NotPostfix(ValueError):
    """A file with no Postfix line at all."""


@dataclass
class _Message:
    host: str
    qid: str
    msg: str
    first_t: float
    trace: str = ""
    client_ip: str = ""
    conn: str = ""
    origin: str = "local"
    mail_from: str | None = None
    size: int = 0
    nrcpt: int = 0
    active_t: float | None = None
    rejected: bool = False
    held: bool = False
    discarded: tuple[float, str] | None = None
    expired_t: float | None = None
    removed: tuple[float, str] | None = None      # (time, the program that removed it)
    deliveries: list[tuple[LogLine, P.Delivery]] = field(default_factory=list)
    notices: list[tuple[float, str, "_Message"]] = field(default_factory=list)


@dataclass
class Imported:
    """The imported log: its events, and what was not understood."""

    events: list[E.Event]
    lines: int
    used: int
    ignored: int
    unknown: list[tuple[str, int, str]]      # (file, line number, text)
    notes: list[str]
    start: float | None                       # Unix time of the first line
    end: float | None

    @property
    def hosts(self) -> list[str]:
        """The hosts whose lines made events."""
        return sorted({e.host for e in self.events} - {RUNNER})

    def log(self, expectations: list[tuple[str, str, dict]]) -> list[E.Event]:
        """The event log with ``(guarantee, expected, params)`` expectations
        right after ``RunStarted``, where a run writes them."""
        expected = [GuaranteeExpected(t=0.0, host=RUNNER, guarantee=g, expected=x, params=p)
                    for g, x, p in expectations]
        return self.events[:1] + expected + self.events[1:]


def import_logs(files: Iterable[tuple[str, Iterable[str]]], year: dict[str, int] | int,
                name: str) -> Imported:
    """Events from Postfix log ``files`` (``(name, lines)`` pairs, read in
    order); ``year`` (one for all, or per file name) dates traditional
    timestamps; ``name`` is the run's name in the verdict.  Raises
    :class:`NotPostfix` naming a file without any Postfix line."""
    parsed: list[LogLine] = []
    unknown: list[tuple[str, int, str]] = []
    total = 0
    names: list[str] = []
    for fname, lines in files:
        names.append(fname)
        years = YearTracker(year[fname] if isinstance(year, dict) else year)
        found = count = 0
        for number, raw in enumerate(lines, start=1):
            total += 1
            count += 1
            rec = parse_line(raw, years, fname, number)
            if rec is not None and is_postfix(rec):
                parsed.append(rec)
                found += 1
            elif raw.strip():
                unknown.append((fname, number, raw.rstrip("\r\n")))
        if not found:
            raise NotPostfix(f"{fname}: not a Postfix log: no line from a Postfix program "
                             f"(postfix/smtpd[pid]: ...) in its {count} lines")
    parsed.sort(key=lambda r: r.t)           # stable: file order within one second
    start = parsed[0].t if parsed else None
    end = parsed[-1].t if parsed else None
    # From here on, times are seconds since the first line.
    parsed = [replace(r, t=r.t - start) for r in parsed]
    messages, used, ignored, more_unknown = _gather(parsed)
    unknown += more_unknown
    events, notes = _events(messages)
    head: list[E.Event] = [RunStarted(t=0.0, host=RUNNER, scenario=name, seed=0)]
    head.append(ScenarioDescribed(t=0.0, host=RUNNER,
                                  description=_describe(names, start, end)))
    tail = [RunEnded(t=(end - start) if start is not None else 0.0, host=RUNNER)]
    return Imported(head + events + tail, total, used, ignored, unknown, notes, start, end)


def _gather(lines: list[LogLine]):
    current: dict[tuple[str, str], _Message] = {}
    every: list[_Message] = []
    uses: dict[tuple[str, str], int] = {}
    used = ignored = 0
    unknown = []

    def message(rec: LogLine, qid: str) -> _Message:
        key = (rec.host, qid)
        m = current.get(key)
        if m is None:
            uses[key] = uses.get(key, 0) + 1
            name = qid if uses[key] == 1 else f"{qid}~{uses[key]}"
            m = current[key] = _Message(rec.host, qid, name, rec.t)
            every.append(m)
        return m

    for rec in lines:
        fact = P.classify(rec.text)
        if fact is None:
            unknown.append((rec.file, rec.line, f"{rec.program}: {rec.text}"))
            continue
        if fact == P.IGNORED:
            ignored += 1
            continue
        used += 1
        m = message(rec, fact.qid)
        if isinstance(fact, P.Client):
            m.origin, m.client_ip, m.conn = "smtp", fact.ip, f"{rec.host}/smtpd[{rec.pid}]"
        elif isinstance(fact, P.Pickup):
            m.origin = "local"
        elif isinstance(fact, P.MessageId):
            m.trace = fact.message_id
        elif isinstance(fact, P.CleanupAction):
            if fact.action in ("reject", "milter-reject"):
                m.rejected = True
            elif fact.action == "discard":
                m.discarded = (rec.t, fact.text)
            else:
                m.held = True
        elif isinstance(fact, P.Active):
            m.mail_from, m.size, m.nrcpt = fact.mail_from, fact.size, fact.nrcpt
            if m.active_t is None:
                m.active_t = rec.t
        elif isinstance(fact, P.Delivery):
            m.deliveries.append((rec, fact))
        elif isinstance(fact, P.Expired):
            m.expired_t = rec.t
        elif isinstance(fact, P.Notice):
            dsn = message(rec, fact.dsn_qid)
            if fact.kind in ("failed", "delayed", "relayed") and dsn.origin != "smtp":
                dsn.origin = "dsn"
            m.notices.append((rec.t, fact.kind, dsn))
        elif isinstance(fact, P.Removed):
            m.removed = (rec.t, rec.daemon)
            current.pop((rec.host, fact.qid), None)
    return every, used, ignored, unknown


def _events(messages: list[_Message]) -> tuple[list[E.Event], list[str]]:
    out: list[tuple[float, int, E.Event]] = []
    notes: list[str] = []
    untried = 0

    def add(t: float, event_cls, **kw) -> None:
        out.append((t, len(out), event_cls(t=t, **kw)))

    probes = 0
    for m in messages:
        if m.rejected or m.mail_from is None and not m.deliveries:
            continue
        if any(d.status in _PROBE_RESULTS for _, d in m.deliveries):
            probes += 1         # an address verification probe: never delivered, not mail
            continue
        trace = m.trace or f"{m.host}/{m.msg}"
        rcpts = list(dict.fromkeys(d.rcpt for _, d in m.deliveries))
        if not rcpts:
            untried += 1
            continue
        mail_from = m.mail_from or ""
        at = m.active_t if m.active_t is not None else m.first_t
        base = dict(host=m.host, msg=m.msg, trace=trace)
        if m.origin == "smtp":
            add(at, E.MessageAccepted, **base, conn=m.conn, client_ip=m.client_ip, helo="",
                mail_from=mail_from, rcpts=tuple(rcpts), size=m.size)
        else:
            add(at, E.MessageSubmitted, **base, mail_from=mail_from, rcpts=tuple(rcpts),
                size=m.size, origin="dsn" if m.origin == "dsn" else "local")
        gone = _vanished(m, rcpts)
        for r in rcpts:
            # A copy Postfix removed without a fate was never really kept: leaving out
            # its Queued makes the judge see it as what it is, lost.
            if r not in gone:
                add(at, E.Queued, **base, rcpt=r, domain=domain_of(r), held=m.held)
        if gone and m.removed is not None and m.removed[1] == "postsuper":
            for r in gone:
                add(m.removed[0], E.Discarded, **base, rcpt=r, policy="postsuper",
                    reason="deleted from the queue by the administrator (postsuper -d)")
        elif gone:
            notes.append(f"{m.host}/{m.msg}: removed from the queue with no fate for "
                         f"{', '.join(gone)}")
        if m.discarded is not None:
            for r in rcpts:
                add(m.discarded[0], E.Discarded, **base, rcpt=r, policy="cleanup",
                    reason=m.discarded[1])
        _deliveries(m, base, rcpts, at, add)
    if probes:
        notes.append(f"{probes} address verification probe(s) (status=deliverable or "
                     f"undeliverable) left out: they are not mail")
    if untried:
        notes.append(f"{untried} message(s) had no delivery line for any recipient before the "
                     f"log ends: their recipients are unknown and they are not judged")
    out.sort(key=lambda x: (x[0], x[1]))
    return [e for _, _, e in out], notes


def _vanished(m: _Message, rcpts: list[str]) -> list[str]:
    """Recipients of a removed message that no line gave a fate."""
    if m.removed is None or m.expired_t is not None or m.discarded is not None:
        return []
    done = {d.rcpt for _, d in m.deliveries if d.status in ("sent", "bounced", "expired")}
    return [r for r in rcpts if r not in done]


def _deliveries(m: _Message, base: dict, rcpts: list[str], at: float, add) -> None:
    """Attempts and fates of ``m``'s recipients, with the DSNs that cover them."""
    by_rcpt: dict[str, list[tuple[LogLine, P.Delivery]]] = {r: [] for r in rcpts}
    for rec, d in m.deliveries:
        by_rcpt[d.rcpt].append((rec, d))
    final: dict[str, float] = {}          # rcpt -> time of its bounce (or delivery)
    bounced: dict[str, tuple[float, int, str, str]] = {}   # rcpt -> (t, code, text, reason)
    for r, tries in by_rcpt.items():
        for i, (rec, d) in enumerate(tries):
            if r in final:
                break
            dest, ip = P.relay_address(d.relay)
            took = sum(d.delays[2:4]) if len(d.delays) >= 4 else 0.0
            add(max(at, rec.t - took), E.AttemptStarted, **base, rcpts=(r,), dest_host=dest,
                dest_ip=ip, attempt=i + 1)
            code = P.reply_code(d.text, d.dsn)
            if d.status == "sent":
                final[r] = rec.t
                if rec.daemon == "discard":
                    add(rec.t, E.Discarded, **base, rcpt=r, policy="discard transport",
                        reason=d.text)
                elif rec.daemon in _MAILBOX_AGENTS:
                    add(rec.t, E.DeliveredToMailbox, **base, rcpt=r, mailbox=r)
                else:
                    add(rec.t, E.Relayed, **base, rcpt=r, dest_host=dest, dest_ip=ip,
                        code=code, text=d.text)
            elif d.status in ("bounced", "expired"):
                final[r] = rec.t
                reason = "expired" if d.status == "expired" else \
                    "unroutable" if dest == "none" else "rejected"
                bounced[r] = (rec.t, code, d.text, reason)
            elif d.status == "deferred":
                later = tries[i + 1][0].t if i + 1 < len(tries) else rec.t
                add(rec.t, E.Deferred, **base, rcpt=r, code=code, text=d.text,
                    next_attempt=later, dest_host=dest if dest != "none" else "")
    if m.expired_t is not None:
        for r in rcpts:
            if r not in final:
                last = by_rcpt[r][-1][1] if by_rcpt[r] else None
                code = P.reply_code(last.text, last.dsn) if last else 450
                text = f"expired in the queue; last reply: {last.text}" if last else "expired"
                final[r] = m.expired_t
                bounced[r] = (m.expired_t, code, text, "expired")
    # A notification covers the recipients that failed before it and no earlier one.
    covered: dict[str, _Message] = {}
    for t, kind, dsn in m.notices:
        if kind != "failed":
            continue
        for r, (bt, *_rest) in bounced.items():
            if r not in covered and bt <= t:
                covered[r] = dsn
    for r, (bt, code, text, reason) in bounced.items():
        dsn = covered.get(r)
        add(bt, E.Bounced, **base, rcpt=r, code=code, text=text, reason=reason,
            dsn_trace=_trace(dsn) if dsn is not None else "")
    for t, kind, dsn in m.notices:
        if kind == "failed":
            who = tuple(r for r in rcpts if covered.get(r) is dsn)
        elif kind == "delayed":
            who = tuple(r for r in rcpts if final.get(r, float("inf")) > t)
        else:
            continue        # a copy to the postmaster, or a success notice: no DSN owed
        if who:
            add(t, E.DsnCreated, host=m.host, msg=dsn.msg, trace=_trace(dsn),
                about_trace=base["trace"], to=m.mail_from or "", rcpts=who, action=kind,
                content_type="multipart/report", mail_from="")


def _trace(m: _Message) -> str:
    return m.trace or f"{m.host}/{m.msg}"


def _describe(files: list[str], start: float | None, end: float | None) -> str:
    from datetime import datetime, timezone

    def stamp(t: float) -> str:
        return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    span = f", {stamp(start)} to {stamp(end)}" if start is not None else ""
    return f"Imported from Postfix logs ({', '.join(files)}){span}; times are seconds " \
           f"since the first line."
