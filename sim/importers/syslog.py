"""Syslog lines as Postfix writes them: time, host, program[pid], text.

Two header forms are read:

* the traditional one (``Dec  1 11:18:42 mx postfix/smtpd[9731]: ...``;
  postlogd's ``maillog_file`` writes ``Dec 01``), which has no year: the
  caller gives it, and a month that goes backwards (December, then
  January) starts the next year;
* RFC 3339 (``2026-12-01T11:18:42.123456+00:00 mx postfix/smtpd[9731]:``),
  as rsyslog writes it with its high-precision template.

Times without a zone are read as UTC; nothing here reads the clock.  A
line whose program's last part is not a Postfix daemon is not Postfix's
(:func:`is_postfix`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

_MONTHS = {m: i for i, m in enumerate(
    "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), start=1)}

_TRADITIONAL = re.compile(
    r"^(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<hms>\d\d:\d\d:\d\d)(?P<frac>\.\d+)? "
    r"(?P<host>\S+) (?P<prog>[^\s\[\]]+)\[(?P<pid>\d+)\]: (?P<text>.*)$")
_RFC3339 = re.compile(
    r"^(?P<iso>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?) "
    r"(?P<host>\S+) (?P<prog>[^\s\[\]]+)\[(?P<pid>\d+)\]: (?P<text>.*)$")

#: The programs of a Postfix installation (the last part of the syslog name:
#: ``postfix/smtpd``, ``postfix-out/smtp``, ``postfix/submission/smtpd``).
POSTFIX_DAEMONS = frozenset(
    "anvil bounce cleanup discard dnsblog error flush lmtp local master pickup pipe "
    "postdrop postfix-script postlogd postmap postqueue postscreen postsuper proxymap qmgr "
    "qmqpd retry scache sendmail showq smtp smtpd spawn tlsmgr tlsproxy trivial-rewrite "
    "verify virtual oqmgr".split())


@dataclass(frozen=True)
class LogLine:
    """One syslog line: Unix time, host, program (``postfix/smtp``) and its
    last part (``daemon``), pid, the message text, and where it was read."""

    t: float
    host: str
    program: str
    daemon: str
    pid: int
    text: str
    file: str
    line: int


class YearTracker:
    """The year of traditional timestamps in one file, from a starting year:
    a month earlier than the previous line's means the year turned."""

    def __init__(self, year: int) -> None:
        self.year = year
        self.month = 0

    def year_of(self, month: int) -> int:
        if self.month and month < self.month:
            self.year += 1
        self.month = month
        return self.year


def parse_line(raw: str, years: YearTracker, file: str, number: int) -> LogLine | None:
    """``raw`` as a :class:`LogLine`, or None when it is no syslog line."""
    text = raw.rstrip("\r\n")
    m = _TRADITIONAL.match(text)
    if m is not None:
        month = _MONTHS.get(m["mon"])
        if month is None:
            return None
        hh, mm, ss = (int(x) for x in m["hms"].split(":"))
        try:
            when = datetime(years.year_of(month), month, int(m["day"]), hh, mm, ss,
                            tzinfo=timezone.utc)
        except ValueError:
            return None
        t = when.timestamp() + (float(m["frac"]) if m["frac"] else 0.0)
    else:
        m = _RFC3339.match(text)
        if m is None:
            return None
        try:
            when = datetime.fromisoformat(m["iso"].replace("Z", "+00:00"))
        except ValueError:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        t = when.timestamp()
    program = m["prog"]
    return LogLine(t=t, host=m["host"], program=program, daemon=program.rsplit("/", 1)[-1],
                   pid=int(m["pid"]), text=m["text"], file=file, line=number)


def is_postfix(line: LogLine) -> bool:
    """The line was written by a Postfix program (``postfix*/daemon``)."""
    return "/" in line.program and line.daemon in POSTFIX_DAEMONS
