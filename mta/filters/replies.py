"""The SMTP replies the content filters ask their callers to give.

Kept in one place so the stages, the server that sends them and the tests
share one spelling of each.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Reply:
    """An SMTP reply for the caller to send or log (RFC 5321 code, RFC 3463
    enhanced status, text)."""

    code: int
    enhanced: str
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.enhanced} {self.text}"


# RFC 3463 X.7.1 "delivery not authorized"; 4yz so the sender keeps the
# message and retries (RFC 5321 §4.2.5).  Given for every scanner error:
# scanner down, timed out, died, or content it could not inspect.
TEMPFAIL = Reply(451, "4.7.1", "Message content could not be scanned, try again later")

# Longest file name quoted in a reply: RFC 5321 caps a reply line at 512
# octets (§4.5.3.1.5), and the text around the name takes some.
_MAX_QUOTED = 200


def quote_name(name: str) -> str:
    """``name`` made safe for one reply line: ASCII only (other characters as
    ``?``), no control characters, no quotes, at most 200 characters with
    the tail (the extension) kept."""
    text = "".join("_" if ch in '"\\' else ch if 0x20 <= ord(ch) < 0x7F else "?"
                   for ch in name)
    if len(text) > _MAX_QUOTED:
        text = "..." + text[-(_MAX_QUOTED - 3):]
    return text


def blocked_attachment(name: str, extension: str) -> Reply:
    """The ``550 5.7.1`` refusal at end of DATA naming the blocked file."""
    return Reply(550, "5.7.1",
                 f'Attachment "{quote_name(name)}" refused: {extension} files are not permitted')
