"""One message's way through the mail system, as a swimlane across hosts.

For a recipient, a queue ID or a trace (the Message-ID), :func:`select`
finds the copies the hosts took, and :func:`swimlane` lays out what
happened to them: one column per host the copies passed, one row per fact
in time order (acceptance, attempts, deferrals with their replies, holds
and releases, relays, delivery, bounces, DSNs) with the link going up and
down on those hosts in between.  Long runs of the same retry are condensed
to their first rounds and the last one, so a seven-day retry history stays
readable.  Delivered or not, every copy can be followed this way: from the
report, and with ``mxsim trace REPORT_DIR RECIPIENT|MSG``.
"""
from __future__ import annotations

from dataclasses import dataclass

from mta import events as E
from sim.evidence.lifecycle import RecipientLife
from sim.evidence.model import Evidence
from sim.events import LinkDown, LinkUp
from sim.report.tables import fmt_t

#: Rounds of one copy shown at the start of a run of deferrals (then the last).
KEEP_ROUNDS = 3
#: Width of the table (a host's column is a share of it, at least ``MIN_CELL``).
WIDTH = 130
MIN_CELL = 30


@dataclass(frozen=True)
class Row:
    """One fact in a lane: when, on which host, what."""

    t: float
    host: str
    text: str


def select(evidence: Evidence, query: str) -> dict[str, list[RecipientLife]]:
    """Copies matching ``query`` (recipient, queue ID or trace), grouped by
    trace in order of first acceptance.  A recipient query keeps only that
    recipient's copies; a message query keeps all of its recipients."""
    q = query.strip().strip("<>").lower()
    by_trace: dict[str, list[RecipientLife]] = {}
    traces = {lf.trace for lf in evidence.lifecycles
              if lf.msg.lower() == q or lf.trace.lower() == q}
    for lf in sorted(evidence.lifecycles, key=lambda x: (x.accepted_t, x.host, x.msg, x.rcpt)):
        if lf.trace in traces or lf.rcpt.lower() == q:
            by_trace.setdefault(lf.trace, []).append(lf)
    return by_trace


def _cell(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, cut between words."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    return text[:width - 3].rsplit(" ", 1)[0] + "..."


def _describe(e: E.Event, rcpt: str) -> str | None:
    """What ``e`` says about the copy, in a few words (None: not worth a row)."""
    if isinstance(e, E.MessageAccepted):
        return f"accepted from {e.client_ip}"
    if isinstance(e, E.MessageSubmitted):
        return f"submitted by {e.mail_from or '<>'}" + (" (a DSN)" if e.origin == "dsn" else "")
    if isinstance(e, E.Queued):
        return "queued, held for release" if e.held else "queued"
    if isinstance(e, E.AttemptStarted):
        pref = f" pref {e.preference}" if e.preference is not None else ""
        return f"try {e.dest_host}{pref}"
    if isinstance(e, E.Deferred):
        return f"deferred {e.code} {e.text}; next {fmt_t(e.next_attempt)}"
    if isinstance(e, E.Relayed):
        return f"relayed to {e.dest_host} ({e.code})"
    if isinstance(e, E.DeliveredToMailbox):
        return f"delivered to mailbox {e.mailbox}"
    if isinstance(e, E.Bounced):
        return f"bounced {e.code} {e.text} ({e.reason})"
    if isinstance(e, E.Discarded):
        return f"discarded by {e.policy}: {e.reason}"
    if isinstance(e, E.DsnCreated):
        return f"{e.action} DSN to {e.to}"
    return None


def _condensed(rows: list[Row]) -> list[Row]:
    """Per host, a run of more than ``KEEP_ROUNDS`` deferrals keeps its
    first rounds and its last, with one row saying how many were skipped."""
    out: list[Row] = []
    run: list[list[Row]] = []          # rounds of the current run, on one host
    host = None

    def flush() -> None:
        if len(run) > KEEP_ROUNDS + 1:
            skipped = run[KEEP_ROUNDS:-1]
            for r in run[:KEEP_ROUNDS]:
                out.extend(r)
            n = len(skipped)
            out.append(Row(skipped[0][0].t, host or "",
                           f"... {n} more round{'s' if n != 1 else ''} deferred "
                           f"until {fmt_t(skipped[-1][-1].t)}"))
            out.extend(run[-1])
        else:
            for r in run:
                out.extend(r)
        run.clear()

    for row in rows:
        is_round = row.text.startswith(("try ", "deferred "))
        if is_round and row.host == host and run:
            if row.text.startswith("try ") and run[-1][-1].text.startswith("deferred "):
                run.append([row])
            else:
                run[-1].append(row)
            continue
        flush()
        if is_round and row.text.startswith("try "):
            host = row.host
            run.append([row])
        else:
            host = None
            out.append(row)
    flush()
    return out


def rows_of(evidence: Evidence, lives: list[RecipientLife]) -> tuple[list[str], list[Row]]:
    """The hosts (lane order) and the condensed rows for one trace's copies."""
    hosts = list(dict.fromkeys(lf.host for lf in lives))
    seen: set[int] = set()
    rows: list[tuple[float, int, Row]] = []
    for lf in lives:
        for e in lf.events:
            text = _describe(e, lf.rcpt)
            if text is None or id(e) in seen:
                continue
            seen.add(id(e))
            host = e.host if e.host in hosts else lf.host
            rows.append((e.t, len(rows), Row(e.t, host, text)))
    if not rows:
        return hosts, []
    start, end = min(r[0] for r in rows), max(r[0] for r in rows)
    for e in evidence.of(E.Released):
        if e.host in hosts and start <= e.t <= end:
            rows.append((e.t, len(rows), Row(e.t, e.host, f"released by {e.trigger}")))
    for kind, word in ((LinkUp, "link up"), (LinkDown, "link down")):
        for e in evidence.of(kind):
            if e.host in hosts and start <= e.t <= end:
                rows.append((e.t, len(rows), Row(e.t, e.host, word)))
    ordered = [r for _, _, r in sorted(rows, key=lambda x: (x[0], x[1]))]
    return hosts, _condensed(ordered)


def _destinations(lives: list[RecipientLife], hosts: list[str]) -> list[str]:
    """Hosts the copies were sent to that are not lanes themselves."""
    out = []
    for lf in lives:
        for a in lf.attempts:
            if a.dest_host not in hosts and a.dest_host not in out:
                out.append(a.dest_host)
    return out


def _link_summary(evidence: Evidence, host: str, start: float, end: float) -> str | None:
    """``host``'s link between ``start`` and ``end``: how long it was down."""
    periods = [p for p in evidence.link_periods if p.host == host and p.end > start
               and p.start < end]
    if not periods or all(p.state == "up" for p in periods):
        return None
    down = sum(min(p.end, end) - max(p.start, start) for p in periods if p.state == "down")
    ups = sum(1 for p in periods if p.state == "up")
    when = "never up" if not ups else f"up in {ups} period{'s' if ups != 1 else ''}"
    return f"{host}'s link was down {fmt_t(down)} of those {fmt_t(end - start)}, {when}"


def swimlane(evidence: Evidence, lives: list[RecipientLife]) -> str:
    """The text swimlane of one trace's copies (a fixed-width table)."""
    hosts, rows = rows_of(evidence, lives)
    first = lives[0]
    rcpts = sorted({lf.rcpt for lf in lives})
    fates = ", ".join(f"{lf.rcpt} on {lf.host}: {lf.fate}" for lf in lives)
    head = [f"message {first.trace} from {first.mail_from or '<>'} to {', '.join(rcpts)}",
            f"copies: {fates}"]
    if rows:
        for dest in _destinations(lives, hosts):
            note = _link_summary(evidence, dest, rows[0].t, rows[-1].t)
            if note:
                head.append(note)
    stamp = 16
    cell = max(MIN_CELL, (WIDTH - stamp) // max(1, len(hosts)) - 2)
    lines = [" " * stamp + "".join(h[:cell].ljust(cell + 2) for h in hosts).rstrip()]
    for row in rows:
        cells = ["" if h != row.host else _cell(row.text, cell) for h in hosts]
        lines.append(fmt_t(row.t).ljust(stamp) + "".join(c.ljust(cell + 2) for c in cells).rstrip())
    return "\n".join(head + [""] + lines)


#: Undelivered messages the report draws a swimlane for.
REPORT_LANES = 5


def report_lanes(evidence: Evidence, rows: list[dict]) -> list[tuple[str, str, str]]:
    """``(trace, rcpt, swimlane)`` for the first undelivered rows of a report
    (one per message), so a reader can follow them without the command."""
    out: list[tuple[str, str, str]] = []
    for r in rows:
        if len(out) >= REPORT_LANES:
            break
        if any(trace == r["trace"] for trace, _, _ in out):
            continue
        # What select(evidence, trace) finds for this recipient, from the
        # model's index by trace instead of a scan of every copy per row.
        lives = sorted((lf for lf in evidence.lives_of(r["trace"]) if lf.rcpt == r["rcpt"]),
                       key=lambda x: (x.accepted_t, x.host, x.msg, x.rcpt))
        if lives:
            out.append((r["trace"], r["rcpt"], swimlane(evidence, lives)))
    return out
