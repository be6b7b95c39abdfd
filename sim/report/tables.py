"""The tables both report renderers draw from, and their time format.

* :func:`fmt_t`: the stable time format of every table (``1d 02:03:04.5``);
* :func:`host_rows`: per host, the copies it took and their fates;
* :func:`undelivered`: the recipients that never reached a mailbox, with
  :func:`why` each ended as it did.
"""
from __future__ import annotations

import re

from typing import Any

from mta import events as E
from sim.evidence.lifecycle import BOUNCED_NULL_SENDER, LOSS_FATES, RecipientLife
from sim.evidence.model import Evidence

#: Columns of the hosts table, in order (fates of one host's copies).
HOST_COLUMNS = ("taken", "delivered", "relayed", "relayed-out", "bounced", "discarded",
                "queued", "lost")
#: Rows shown in the "recipients not delivered" table; the heading gives the total.
UNDELIVERED_MAX = 100


def fmt_t(t: float | None) -> str:
    """``93784.5`` -> ``1d 02:03:04.5``; stable, for tables."""
    if t is None:
        return "-"
    sign = "-" if t < 0 else ""
    t = abs(float(t))
    d, rem = divmod(t, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    frac = f"{s:06.3f}".rstrip("0").rstrip(".") if s != int(s) else f"{int(s):02d}"
    day = f"{int(d)}d " if d else ""
    return f"{sign}{day}{int(h):02d}:{int(m):02d}:{frac}"


def host_rows(evidence: Evidence) -> list[dict[str, Any]]:
    """Per host: copies taken and their fates (loss fates summed as lost)."""
    rows: dict[str, dict[str, Any]] = {}
    for lf in evidence.lifecycles:
        r = rows.setdefault(lf.host, {"host": lf.host, **{c: 0 for c in HOST_COLUMNS}})
        r["taken"] += 1
        fate = "lost" if lf.fate in LOSS_FATES else \
            "bounced" if lf.fate == BOUNCED_NULL_SENDER else lf.fate
        r[fate] += 1
    return [rows[h] for h in sorted(rows)]


def undelivered(evidence: Evidence) -> tuple[list[dict[str, Any]], int]:
    """Recipients (not DSNs) that did not reach a mailbox: the first
    :data:`UNDELIVERED_MAX`, and how many there are."""
    rows = []
    for o in evidence.mail_outcomes:
        if o.fate == "delivered":
            continue
        rows.append({"trace": o.trace, "rcpt": o.rcpt, "fate": o.fate,
                     "path": " > ".join(dict.fromkeys(o.hops)),
                     "accepted": o.accepted_t, "at": o.fate_t,
                     "why": why(_copies(evidence, o.trace, o.rcpt))})
    return rows[:UNDELIVERED_MAX], len(rows)


#: Causes listed in the report's "by cause" summary (the rest are summed).
CAUSES_MAX = 10


def loss_causes(evidence: Evidence) -> list[tuple[int, str, str]]:
    """``(recipients, fate, cause)`` for every recipient that did not reach a
    mailbox, grouped by what happened and where ("68 bounced mta.exim.example:
    421 4.4.2 ... (expired)"), most frequent first; the summary a reader
    wants before the per-recipient rows."""
    counts: dict[tuple[str, str], int] = {}
    for o in evidence.mail_outcomes:
        if o.fate == "delivered":
            continue
        cause = re.sub(r" after \d+ attempts", "", why(_copies(evidence, o.trace, o.rcpt)))
        counts[(o.fate, cause)] = counts.get((o.fate, cause), 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    out = [(n, fate, cause) for (fate, cause), n in ranked[:CAUSES_MAX]]
    rest = sum(n for _, n in ranked[CAUSES_MAX:])
    if rest:
        out.append((rest, "other", f"{len(ranked) - CAUSES_MAX} more causes"))
    return out


def _copies(evidence: Evidence, trace: str, rcpt: str) -> list[RecipientLife]:
    """The copies of one recipient of one message, in lifecycle order."""
    return [lf for lf in evidence.lives_of(trace) if lf.rcpt == rcpt]


def why(group: list[RecipientLife]) -> str:
    """A short reason for a recipient's end-to-end fate, from its copies."""
    for lf in group:
        fe = lf.fate_event
        if isinstance(fe, E.Bounced):
            return f"{lf.host}: {fe.code} {fe.text} ({fe.reason})"
        if isinstance(fe, E.Discarded):
            return f"{lf.host}: discarded by {fe.policy or '(no policy)'}: {fe.reason}"
    for lf in group:
        if lf.detail:
            return f"{lf.host}: {lf.detail}"
    held = [lf for lf in group if lf.fate == "queued"]
    if held:
        lf = held[-1]
        last = lf.deferrals[-1] if lf.deferrals else None
        tail = f"; last reply {last.code} {last.text}" if last else ""
        return f"still queued on {lf.host} after {len(lf.attempts)} attempts{tail}"
    return ""
