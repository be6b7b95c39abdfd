"""Message size limit (RFC 1870).

The limit is advertised as ``SIZE n`` in EHLO.  A ``SIZE=`` declared at MAIL
over the limit is refused there; a message that turns out larger while DATA
is read is refused after the final dot (the server stops keeping the bytes
as soon as the count passes the limit, but must read to the dot: RFC 1870
forbids using SIZE to find the end of DATA).  Both get Postfix's
"552 5.3.4 Message size exceeds fixed limit" (RFC 3463 5.3.4: message too
big for system).

Postfix's default ``message_size_limit`` is 10240000 octets; RFC 5321
§4.5.3.1.7 says a server MUST accept at least 64K.
"""
from __future__ import annotations

from dataclasses import dataclass

from mta.policy.chain import Stage
from mta.policy.decision import Decision, Facts

POSTFIX_MESSAGE_SIZE_LIMIT = 10_240_000
RFC_MIN_MESSAGE_SIZE = 64 * 1024
TOO_BIG_CODE = 552
TOO_BIG_STATUS = "5.3.4"
TOO_BIG_TEXT = "Message size exceeds fixed limit"


@dataclass
class SizeLimit(Stage):
    """Refuse messages larger than ``limit`` octets (CRLF counted, dot
    stuffing not, RFC 1870 §5)."""

    limit: int = POSTFIX_MESSAGE_SIZE_LIMIT
    name: str = "size"

    def __post_init__(self) -> None:
        if self.limit < RFC_MIN_MESSAGE_SIZE:
            raise ValueError(f"size limit {self.limit} is below RFC 5321's 64K minimum")
        self.max_message_size = self.limit

    def ehlo_keywords(self):
        return [f"SIZE {self.limit}"]

    def _too_big(self) -> Decision:
        return Decision.reject(self.name, TOO_BIG_CODE, TOO_BIG_STATUS, TOO_BIG_TEXT)

    def on_mail(self, facts: Facts, sender) -> Decision | None:
        if facts.declared_size is not None and facts.declared_size > self.limit:
            return self._too_big()
        return None

    def on_data(self, facts: Facts, message: bytes) -> Decision | None:
        if facts.data_overflow or facts.data_size > self.limit:
            return self._too_big()
        return None
