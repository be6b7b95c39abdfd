"""POP-before-SMTP: which client addresses may relay, and until when.

A successful POP3 login from an address opens relaying from that address
for ``window`` seconds (the seed's "up to ninety minutes": 5,400 s by
default); each later login renews it to a full window from that login.
The grant is open for ``granted <= t < granted + window``: at exactly the
end it is closed.  The table is pure (times are passed in, loop or event
times) and knows nothing of sockets; wire it to a POP3 server with
``Pop3Server(on_login=grants.on_login)`` and ask ``allowed`` from the
relay's policy stage.

``user`` remembers which POP account opened the grant, for the
"sender-affiliated" rule (MAIL FROM must belong to that account's domains).
"""
from __future__ import annotations

from dataclasses import dataclass

#: The seed's window: "for up to ninety minutes".
DEFAULT_WINDOW = 90 * 60.0


@dataclass(frozen=True, slots=True)
class Grant:
    """Relaying opened for ``ip`` by ``user``'s login at ``granted``."""

    ip: str
    user: str
    granted: float
    expires: float

    def open_at(self, t: float) -> bool:
        return self.granted <= t < self.expires


class RelayGrants:
    """The grant table of one POP-before-SMTP service."""

    def __init__(self, window: float = DEFAULT_WINDOW) -> None:
        if not window > 0:
            raise ValueError(f"grant window must be positive, got {window!r}")
        self.window = float(window)
        self._grants: dict[str, Grant] = {}

    def grant(self, ip: str, t: float, user: str = "") -> Grant:
        """Open (or renew) relaying from ``ip`` for a full window from ``t``.
        A login stamped earlier than the current grant (events replayed out
        of order) never shortens it."""
        old = self._grants.get(ip)
        if old is not None and old.granted > t:
            return old
        g = Grant(ip, user, float(t), float(t) + self.window)
        self._grants[ip] = g
        return g

    def on_login(self, client_ip: str, user: str, t: float) -> None:
        """The POP3 server's ``on_login`` hook."""
        self.grant(client_ip, t, user)

    def allowed(self, ip: str, t: float) -> bool:
        """Whether ``ip`` may relay at ``t``."""
        g = self._grants.get(ip)
        return g is not None and g.open_at(t)

    def current(self, ip: str, t: float) -> Grant | None:
        """The grant open for ``ip`` at ``t`` (who opened it), or None."""
        g = self._grants.get(ip)
        return g if g is not None and g.open_at(t) else None

    def prune(self, t: float) -> int:
        """Forget grants closed by ``t``; returns how many were dropped."""
        stale = [ip for ip, g in self._grants.items() if g.expires <= t]
        for ip in stale:
            del self._grants[ip]
        return len(stale)

    def __len__(self) -> int:
        return len(self._grants)
