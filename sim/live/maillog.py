"""The live host's maillog: one Postfix-style line per mail fact.

Operators read mail logs, not JSON: next to ``events.jsonl`` a live host
writes ``maillog`` with the lines a Postfix administrator looks for
(connect, reject, queued from/to, relayed with ``status=sent``, deferred,
bounced, delivered to a mailbox, discarded), formatted from the same
events by :func:`line`, a pure function.  The JSONL log stays the
evidence; the maillog is its human view and holds nothing more.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from mta import events as ev


def _stamp(t: float) -> str:
    return time.strftime("%b %d %H:%M:%S", time.gmtime(t))


def _qid(msg: str) -> str:
    return msg.rpartition("/")[2]


def line(e: ev.Event) -> str | None:
    """The maillog line for ``e`` (None: not a fact this log shows)."""
    if isinstance(e, ev.ConnectionOpened):
        text = f"{e.service}: connect from [{e.client_ip}] ({e.conn.rpartition('/')[2]})"
    elif isinstance(e, ev.SmtpReply) and e.code >= 400 and e.command in ("MAIL", "RCPT", "DATA",
                                                                           "CONNECT"):
        text = (f"smtpd: NOQUEUE: reject: {e.command} from [{e.client_ip}]: {e.code} {e.text};"
                f" arg=<{e.argument}>")
    elif isinstance(e, ev.MessageAccepted):
        text = (f"smtpd: {_qid(e.msg)}: client=[{e.client_ip}] helo=<{e.helo}> "
                f"from=<{e.mail_from}> to=<{','.join(e.rcpts)}> size={e.size} "
                f"message-id=<{e.trace}>")
    elif isinstance(e, ev.Relayed):
        text = (f"smtp: {_qid(e.msg)}: to=<{e.rcpt}>, relay={e.dest_host}[{e.dest_ip}], "
                f"status=sent ({e.code} {e.text})")
    elif isinstance(e, ev.Deferred):
        text = (f"smtp: {_qid(e.msg)}: to=<{e.rcpt}>, relay={e.dest_host or 'none'}, "
                f"status=deferred ({e.code} {e.text})")
    elif isinstance(e, ev.Bounced):
        text = (f"smtp: {_qid(e.msg)}: to=<{e.rcpt}>, status=bounced ({e.code} {e.text}; "
                f"{e.reason})")
    elif isinstance(e, ev.DeliveredToMailbox):
        text = f"local: {_qid(e.msg)}: to=<{e.rcpt}>, mailbox={e.mailbox}, status=sent"
    elif isinstance(e, ev.Discarded):
        text = f"cleanup: {_qid(e.msg)}: to=<{e.rcpt}>, status=discarded ({e.policy})"
    elif isinstance(e, ev.HostRestarted):
        text = f"master: daemon started, {e.recovered} messages recovered"
    else:
        return None
    return f"{_stamp(e.t)} {e.host} mxsim/{text}"


class Maillog:
    """Appends :func:`line` of each event to ``path`` (whole lines, O_APPEND)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def emit(self, event: ev.Event) -> None:
        text = line(event)
        if text is not None:
            os.write(self._fd, (text + "\n").encode("utf-8", "replace"))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
