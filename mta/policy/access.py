"""Client-address stages: the connect-time allow-list and static block lists.

Texts follow Postfix's access(5) rejections ("Client host rejected: Access
denied", 554 5.7.1).  Both stages can act at connect time (the greeting is a
554 and the server then answers 503 to everything but QUIT, RFC 5321 §3.1)
or later, at RCPT, which is where Postfix applies client restrictions by
default (``smtpd_delay_reject = yes``) and which logs the envelope too.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Iterable

from mta.policy.chain import Stage
from mta.policy.decision import Decision, Facts, Phase

#: Always allowed by the lock-down: the host talking to itself.
LOOPBACK = ("127.0.0.0/8", "::1/128")

ACCESS_DENIED_CODE = 554
ACCESS_DENIED_STATUS = "5.7.1"


_MAX_REMEMBERED = 4096


class Networks:
    """A fixed set of IP networks with a membership test.

    Entries are CIDR strings or single addresses; a bad entry raises
    ValueError at construction (configuration errors surface early).
    """

    def __init__(self, entries: Iterable[str] = ()) -> None:
        self.entries: tuple[str, ...] = tuple(entries)
        self._nets = tuple(ipaddress.ip_network(e, strict=False) for e in self.entries)
        # Answers by address text: the set is fixed, and a server asks about
        # the same few client addresses at every connection and recipient.
        # Bounded, for a live server that meets ever new clients.
        self._answers: dict[str, bool] = {}

    def __contains__(self, ip: object) -> bool:
        text = str(ip)
        answer = self._answers.get(text)
        if answer is None:
            answer = self._test(text)
            if len(self._answers) < _MAX_REMEMBERED:
                self._answers[text] = answer
        return answer

    def _test(self, text: str) -> bool:
        try:
            addr = ipaddress.ip_address(text)
        except ValueError:
            return False
        return any(addr.version == n.version and addr in n for n in self._nets)

    def __bool__(self) -> bool:
        return bool(self._nets)

    def __repr__(self) -> str:
        return f"Networks({list(self.entries)!r})"


def access_denied(stage: str, facts: Facts) -> Decision:
    return Decision.reject(stage, ACCESS_DENIED_CODE, ACCESS_DENIED_STATUS,
                           f"<[{facts.client_ip}]>: Client host rejected: Access denied")


@dataclass
class ConnectAllowList(Stage):
    """Lock-down: only the listed networks (the feed's address, the LAN)
    and loopback may talk to this server; everyone else is refused at
    connect (``feed-lockdown``)."""

    allowed: Networks
    name: str = "allowlist"
    include_loopback: bool = True

    def __post_init__(self) -> None:
        if self.include_loopback:
            self.allowed = Networks(self.allowed.entries + LOOPBACK)

    def on_connect(self, facts: Facts) -> Decision | None:
        if facts.client_ip in self.allowed:
            return None
        return access_denied(self.name, facts)


@dataclass
class ClientBlockList(Stage):
    """Static IP block list: listed clients are refused at ``phase``
    (CONNECT or RCPT)."""

    blocked: Networks
    phase: Phase = Phase.RCPT
    name: str = "blocklist"

    def __post_init__(self) -> None:
        if self.phase not in (Phase.CONNECT, Phase.RCPT):
            raise ValueError("a client block list acts at CONNECT or RCPT")

    def _check(self, facts: Facts) -> Decision | None:
        if facts.client_ip in self.blocked:
            return access_denied(self.name, facts)
        return None

    def on_connect(self, facts: Facts) -> Decision | None:
        return self._check(facts) if self.phase is Phase.CONNECT else None

    def on_rcpt(self, facts: Facts, rcpt) -> Decision | None:
        return self._check(facts) if self.phase is Phase.RCPT else None
