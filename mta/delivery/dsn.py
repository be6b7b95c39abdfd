"""Delivery status notifications (RFC 3464 / RFC 3462 ``multipart/report``).

A DSN is built as bytes, by hand, rather than with :mod:`email.generator`:
the standard generator draws MIME boundaries from the global ``random``
module, which would make simulated runs differ.  Here the boundary is
derived from the DSN's own queue ID, so the same run gives the same bytes.

Structure (RFC 3464 §2, RFC 6522):

* ``multipart/report; report-type=delivery-status``
* part 1: ``text/plain``, a human-readable explanation;
* part 2: ``message/delivery-status``: per-message fields
  (``Reporting-MTA``, ``Arrival-Date``) then one block per recipient
  (``Final-Recipient``, ``Action``, ``Status``, ``Remote-MTA``,
  ``Diagnostic-Code``, ``Last-Attempt-Date``, ``Will-Retry-Until``);
* part 3: ``text/rfc822-headers``, the original message's headers.

The envelope of a DSN is always ``MAIL FROM:<>`` (RFC 5321 §4.5.5), and no
DSN is ever sent about a message whose own sender was ``<>``: that is the
queue's job to enforce (:func:`mta.queue.outcomes.wants_dsn`).
"""
from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass

from mta.queue.message import split_headers

CONTENT_TYPE = "multipart/report; report-type=delivery-status"
ACTION_FAILED = "failed"
ACTION_DELAYED = "delayed"

_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")


@dataclass(frozen=True)
class RecipientStatus:
    """The fate of one recipient, as reported in the DSN."""

    rcpt: str
    code: int            # the SMTP reply code (or a synthetic one, e.g. 556 for null MX)
    text: str            # the reply text, without the code
    remote_mta: str = ""
    status: str = ""     # RFC 3463 status; derived from ``text``/``code`` when empty


def status_of(code: int, text: str) -> str:
    """The RFC 3463 status: the enhanced code at the start of ``text`` if the
    server sent one, else ``X.0.0`` from the reply class."""
    m = _ENHANCED.match(text)
    if m:
        return ".".join(m.groups())
    return f"{code // 100}.0.0" if code // 100 in (2, 4, 5) else "5.0.0"


def _date(t: float) -> str:
    return email.utils.formatdate(t, usegmt=True)


def build_dsn(*, reporting_mta: str, dsn_id: str, message_id: str, to: str,
              action: str, recipients: list[RecipientStatus], original: bytes,
              arrival: float, now: float, retry_until: float | None = None) -> bytes:
    """The bytes of one DSN (headers and body, CRLF line ends).

    ``action`` is ``failed`` (a bounce) or ``delayed`` (a delay warning).
    ``message_id`` is the DSN's own Message-ID value (without brackets).
    """
    if action not in (ACTION_FAILED, ACTION_DELAYED):
        raise ValueError(f"unsupported DSN action {action!r}")
    boundary = "=_dsn_" + re.sub(r"[^A-Za-z0-9]", "_", dsn_id)
    if action == ACTION_FAILED:
        subject = "Undelivered Mail Returned to Sender"
        intro = ("This is the mail system at host {h}.\r\n\r\n"
                 "I'm sorry to have to inform you that your message could not\r\n"
                 "be delivered to one or more recipients. It's attached below.\r\n")
    else:
        subject = "Delayed Mail (still being retried)"
        intro = ("This is the mail system at host {h}.\r\n\r\n"
                 "####################################################################\r\n"
                 "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\r\n"
                 "####################################################################\r\n\r\n"
                 "Your message could not be delivered yet; the mail system will keep\r\n"
                 "trying until {until}.\r\n")
    until = _date(retry_until) if retry_until is not None else "it gives up"
    lines = [
        f"From: Mail Delivery System <MAILER-DAEMON@{reporting_mta}>",
        f"To: <{to}>",
        f"Subject: {subject}",
        f"Date: {_date(now)}",
        f"Message-ID: <{message_id}>",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: {CONTENT_TYPE};\r\n\tboundary="{boundary}"',
        "",
        "This is a MIME-encapsulated message.",
        "",
        f"--{boundary}",
        "Content-Description: Notification",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        intro.format(h=reporting_mta, until=until),
    ]
    for r in recipients:
        lines.append(f"<{r.rcpt}>: {r.remote_mta + ' said: ' if r.remote_mta else ''}{r.code} {r.text}")
    lines += [
        "",
        f"--{boundary}",
        "Content-Description: Delivery report",
        "Content-Type: message/delivery-status",
        "",
        f"Reporting-MTA: dns; {reporting_mta}",
        f"Arrival-Date: {_date(arrival)}",
    ]
    for r in recipients:
        lines += [
            "",
            f"Final-Recipient: rfc822; {r.rcpt}",
            f"Action: {action}",
            f"Status: {r.status or status_of(r.code, r.text)}",
        ]
        if r.remote_mta:
            lines.append(f"Remote-MTA: dns; {r.remote_mta}")
        lines.append(f"Diagnostic-Code: smtp; {r.code} {r.text}")
        lines.append(f"Last-Attempt-Date: {_date(now)}")
        if action == ACTION_DELAYED and retry_until is not None:
            lines.append(f"Will-Retry-Until: {_date(retry_until)}")
    headers, _ = split_headers(original)
    lines += [
        "",
        f"--{boundary}",
        "Content-Description: Undelivered Message Headers",
        "Content-Type: text/rfc822-headers",
        "",
    ]
    text = "\r\n".join(lines) + "\r\n"
    tail = f"\r\n\r\n--{boundary}--\r\n"
    # Original headers go in as bytes (they may hold 8-bit junk); normalise
    # bare LF to CRLF so the part is well formed.
    orig = re.sub(rb"(?<!\r)\n", b"\r\n", headers)
    return text.encode("ascii", "replace") + orig + tail.encode("ascii")
