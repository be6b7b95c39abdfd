"""Per-account usage of the restricted relays (seed 003: "Full log files
are stored ... we notice compromised accounts before the users do").

For every account that sent through a relay (an SMTP AUTH user, named by
the ``smtp-auth`` pass decision of its session, or the POP3 account whose
login opened POP-before-SMTP for it), messages, recipients and bytes per
hour of the run, from the accepted messages of its sessions.

An account is flagged as possibly compromised when, in some hour, it sent
at least :data:`FLAG_MIN_MESSAGES` messages and at least
:data:`FLAG_FACTOR` times the median of its own earlier hours (at least
:data:`FLAG_MIN_HISTORY` of them, quiet hours included, counted from its
first message): a sudden jump against its own habit, not a high rate as
such, so a mailing-list account that was busy from the start is not
flagged for it.
"""
from __future__ import annotations

import re
import statistics
from dataclasses import dataclass

from mta import events as E
from sim.evidence.model import Evidence

HOUR = 3600.0
FLAG_FACTOR = 4.0
FLAG_MIN_MESSAGES = 10
FLAG_MIN_HISTORY = 2

_USER = re.compile(r"\buser=(\S+)")


@dataclass(frozen=True)
class AccountUsage:
    """One account on one relay; ``hours`` maps an hour of the run (0 = the
    first) to (messages, recipients, bytes)."""

    host: str
    account: str
    how: str                                   # "auth" or "pop"
    hours: dict[int, tuple[int, int, int]]
    flagged_hour: int | None                   # the first hour that jumped

    @property
    def totals(self) -> tuple[int, int, int]:
        return tuple(sum(h[i] for h in self.hours.values()) for i in range(3))  # type: ignore


def _jump(hours: dict[int, tuple[int, int, int]]) -> int | None:
    if not hours:
        return None
    first, last = min(hours), max(hours)
    counts = [hours.get(h, (0, 0, 0))[0] for h in range(first, last + 1)]
    for i in range(FLAG_MIN_HISTORY, len(counts)):
        base = statistics.median(counts[:i])
        if counts[i] >= FLAG_MIN_MESSAGES and counts[i] >= FLAG_FACTOR * max(base, 1.0):
            return first + i
    return None


def account_usage(ev: Evidence) -> list[AccountUsage]:
    """Every account's usage, sorted by relay host and account."""
    owner: dict[str, tuple[str, str]] = {}            # conn -> (account, how)
    for e in ev.of(E.PolicyDecision):
        m = _USER.search(e.detail)
        if m is None:
            continue
        if e.stage == "smtp-auth" and e.decision == "pass":
            owner[e.conn] = (m.group(1), "auth")
        elif e.stage == "pop-before-smtp" and e.conn not in owner:
            owner[e.conn] = (m.group(1), "pop")
    start = ev.bounds[0]
    table: dict[tuple[str, str, str], dict[int, tuple[int, int, int]]] = {}
    for e in ev.of(E.MessageAccepted):
        who = owner.get(e.conn)
        if who is None:
            continue
        hours = table.setdefault((e.host, who[0], who[1]), {})
        h = int((e.t - start) // HOUR)
        n, r, b = hours.get(h, (0, 0, 0))
        hours[h] = (n + 1, r + len(e.rcpts), b + e.size)
    return [AccountUsage(host, acct, how, dict(sorted(hours.items())), _jump(hours))
            for (host, acct, how), hours in sorted(table.items())]


def usage_rows(ev: Evidence) -> list[dict]:
    """One row per account for the reports: totals, the busiest hour and
    the flag, with a sentence saying why."""
    rows = []
    for u in account_usage(ev):
        n, r, b = u.totals
        peak_h, peak_n = min(u.hours.items(), key=lambda kv: (-kv[1][0], kv[0]))
        flag = ""
        if u.flagged_hour is not None:
            flag = (f"possibly compromised: {u.hours[u.flagged_hour][0]} messages in hour "
                    f"{u.flagged_hour}, over {FLAG_FACTOR:g}x its usual rate")
        rows.append({"host": u.host, "account": u.account, "how": u.how, "messages": n,
                     "recipients": r, "bytes": b, "peak_hour": peak_h,
                     "peak_messages": peak_n[0], "flag": flag,
                     "hourly": " ".join(f"{h}:{c[0]}/{c[1]}" for h, c in u.hours.items())})
    return rows
