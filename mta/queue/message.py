"""Small helpers on raw message bytes: header block, Message-ID (the trace).

The queue never parses a whole MIME tree: it only needs the header block
(for a DSN's ``text/rfc822-headers`` part) and the ``Message-ID`` value that
ties copies of one message across hops (``trace`` in every event).
"""
from __future__ import annotations

import re

_MSGID = re.compile(rb"^message-id[ \t]*:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.I | re.M)


def split_headers(data: bytes) -> tuple[bytes, bytes]:
    """``(header block, body)``; the blank line belongs to neither."""
    # Whichever blank line (CRLF or bare LF style) comes first ends the headers.
    cands = [(p, len(sep)) for sep in (b"\r\n\r\n", b"\n\n") if (p := data.find(sep)) >= 0]
    if not cands:
        return data, b""
    p, n = min(cands)
    return data[:p], data[p + n:]


def message_id(data: bytes) -> str | None:
    """The Message-ID value between ``<`` and ``>`` (or stripped), if any."""
    head, _ = split_headers(data)
    m = _MSGID.search(head)
    if m is None:
        return None
    value = re.sub(rb"\s+", b"", m.group(1)).decode("ascii", "replace")
    if value.startswith("<") and ">" in value:
        value = value[1:value.index(">")]
    return value or None


def ensure_message_id(data: bytes, new_id: str) -> tuple[bytes, str]:
    """Return ``(data, trace)``, prepending ``Message-ID: <new_id>`` when the
    message has none (RFC 5321 §6.4 lets a relay add a missing one)."""
    found = message_id(data)
    if found is not None:
        return data, found
    return b"Message-ID: <" + new_id.encode("ascii") + b">\r\n" + data, new_id
