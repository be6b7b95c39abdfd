"""What one Postfix log line says, as a small record (no state, no I/O).

:func:`classify` reads the text of a Postfix line (after the syslog
header) and returns one of the facts below, ``IGNORED`` for lines that are
understood but say nothing about a message's fate (connects, disconnects,
warnings, NOQUEUE rejections, daemon start and stop), or None for a line
it does not understand.  The formats are those of Postfix 3.x (smtpd,
cleanup, pickup, qmgr, the delivery agents smtp, lmtp, local, virtual,
pipe, error, retry and discard, bounce).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# Short (hex) and long (enable_long_queue_ids) queue IDs; never NOQUEUE.
_QID = r"(?P<qid>(?!NOQUEUE)[0-9A-Za-z]{5,20})"


@dataclass(frozen=True)
class Client:
    """smtpd: ``QID: client=name[ip]``: a message is being received over SMTP."""
    qid: str
    ip: str


@dataclass(frozen=True)
class Pickup:
    """pickup: ``QID: uid=N from=<sender>``: a local submission."""
    qid: str
    mail_from: str


@dataclass(frozen=True)
class MessageId:
    """cleanup: ``QID: message-id=<id>``."""
    qid: str
    message_id: str


@dataclass(frozen=True)
class CleanupAction:
    """cleanup: ``QID: reject|milter-reject|discard|hold: ...`` (header or
    body checks, milters); ``reject`` means the client was refused."""
    qid: str
    action: str
    text: str


@dataclass(frozen=True)
class Active:
    """qmgr: ``QID: from=<sender>, size=N, nrcpt=K (queue active)``."""
    qid: str
    mail_from: str
    size: int
    nrcpt: int


@dataclass(frozen=True)
class Expired:
    """qmgr: ``QID: from=<sender>, status=expired, returned to sender``."""
    qid: str
    mail_from: str


@dataclass(frozen=True)
class Delivery:
    """A delivery agent: ``QID: to=<rcpt>, relay=..., delay=..., delays=a/b/c/d,
    dsn=X.Y.Z, status=sent|deferred|bounced|expired[, returned to sender] (text)``."""
    qid: str
    rcpt: str
    relay: str
    delays: tuple[float, ...]
    dsn: str
    status: str
    text: str


@dataclass(frozen=True)
class Notice:
    """bounce: ``QID: sender non-delivery notification: DSNQID`` (``failed``),
    ``sender delay notification`` (``delayed``), ``postmaster ...`` (a copy
    for the postmaster, not the sender's DSN), ``sender delivery status
    notification`` (success, ``relayed``)."""
    qid: str
    kind: str
    dsn_qid: str


@dataclass(frozen=True)
class Removed:
    """qmgr: ``QID: removed``: the queue file is gone (the ID may be reused)."""
    qid: str


IGNORED = "ignored"

_PATTERNS: list[tuple[re.Pattern, type]] = [
    (re.compile(rf"^{_QID}: client=[^\[]*\[(?P<ip>[^\]]*)\]"), Client),
    (re.compile(rf"^{_QID}: uid=\d+ from=<(?P<mail_from>[^>]*)>"), Pickup),
    (re.compile(rf"^{_QID}: message-id=<?(?P<message_id>[^>]*?)>?\s*$"), MessageId),
    (re.compile(rf"^{_QID}: (?P<action>reject|milter-reject|discard|hold): (?P<text>.*)$"),
     CleanupAction),
    (re.compile(rf"^{_QID}: from=<(?P<mail_from>[^>]*)>, size=(?P<size>\d+), "
                rf"nrcpt=(?P<nrcpt>\d+)"), Active),
    (re.compile(rf"^{_QID}: from=<(?P<mail_from>[^>]*)>, status=expired"), Expired),
    (re.compile(rf"^{_QID}: to=<(?P<rcpt>[^>]*)>, (?:orig_to=<[^>]*>, )?relay=(?P<relay>[^,]+), "
                r"(?:conn_use=\d+, )?delay=[\d.]+, delays=(?P<delays>[\d./]+), "
                r"dsn=(?P<dsn>\d\.\d{1,3}\.\d{1,3}), status=(?P<status>\w+)(?:, [^(]*)? "
                r"\((?P<text>.*)\)$"),
     Delivery),
    (re.compile(rf"^{_QID}: (?P<kind>sender non-delivery|sender delay|postmaster non-delivery|"
                rf"sender delivery status) notification: (?P<dsn_qid>[0-9A-Za-z]{{5,20}})"),
     Notice),
    (re.compile(rf"^{_QID}: removed\s*$"), Removed),
]

_NOTICE_KINDS = {"sender non-delivery": "failed", "sender delay": "delayed",
                 "postmaster non-delivery": "postmaster", "sender delivery status": "relayed"}

# Understood, and nothing to do with a message's fate.
_IGNORED = re.compile(
    r"^(?:(?:connect|disconnect) from |lost connection after |timeout after |NOQUEUE: |"
    r"warning: |daemon started|starting the Postfix|stopping the Postfix|refreshing the Postfix|"
    r"reload |terminating on signal|statistics: |(?:Anonymous|Trusted|Untrusted|Verified) TLS |"
    r"SSL_accept error|improper command pipelining|too many errors after |"
    r"(?:fatal|error|panic): |connect to |table \S+ has changed|Deleted: \d+ messages?|"
    rf"{_QID}: (?:skipped, still being delivered|lost connection|enabling PIX|"
    r"replace: |redirect: |filter: |prepend: |info: |warning: ))")


def classify(text: str) -> object | None:
    """The fact a Postfix line's text states, :data:`IGNORED`, or None."""
    for pattern, cls in _PATTERNS:
        m = pattern.match(text)
        if m is None:
            continue
        fields = m.groupdict()
        if cls is Active:
            return Active(fields["qid"], fields["mail_from"], int(fields["size"]),
                          int(fields["nrcpt"]))
        if cls is Delivery:
            delays = tuple(float(x) for x in fields["delays"].split("/") if x)
            return Delivery(fields["qid"], fields["rcpt"], fields["relay"].strip(), delays,
                            fields["dsn"], fields["status"], fields["text"])
        if cls is Notice:
            return Notice(fields["qid"], _NOTICE_KINDS[fields["kind"]], fields["dsn_qid"])
        return cls(**fields)
    return IGNORED if _IGNORED.match(text) else None


_SAID = re.compile(r"\b(?P<code>[245]\d\d)[ -](?:\d\.\d{1,3}\.\d{1,3} )?")


def reply_code(text: str, dsn: str) -> int:
    """The SMTP reply code in a delivery's text (``... said: 550 5.1.1 ...``),
    else one from the DSN class (4.x.x -> 450, 5.x.x -> 550, 2.x.x -> 250)."""
    m = _SAID.search(text.split("said: ", 1)[1]) if "said: " in text else None
    if m is None:
        m = re.match(r"^(?P<code>[245]\d\d)[ -]", text)
    if m is not None:
        return int(m["code"])
    return {"2": 250, "4": 450, "5": 550}.get(dsn[:1], 450)


def relay_address(relay: str) -> tuple[str, str]:
    """``mx.example[192.0.2.1]:25`` -> (``mx.example``, ``192.0.2.1``);
    ``none``/``local`` -> (``none``, "")."""
    m = re.match(r"^(?P<name>[^\[]+)\[(?P<ip>[^\]]*)\](?::\d+)?$", relay)
    if m is None:
        return relay, ""
    return m["name"], m["ip"]
