"""What greylisting is configured with and what it looks at: postgrey's
options and the triplet.

The triplet is postgrey's key ``lc "client_net/sender/recipient"``
(``postgrey`` lines 396-399): the client network is the address masked to
``ipv4cidr`` (24) or ``ipv6cidr`` (64) bits, or with ``--lookup-by-host``
the whole address as NetAddr::IP prints it (``192.0.2.7/32``) (lines
156-176); the sender is normalised (lines 124-153).  The auto-whitelist key
is the client's full address (line 376).  Time is whole seconds, as Perl's
``time`` is.  The decision itself is :mod:`mta.policy.greylist`.
"""
from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass

from mta.policy.access import Networks

#: postgrey's default ``--greylist-text`` (line 626); ``%r`` is the
#: recipient's domain, ``%s`` the seconds still to wait.
POSTGREY_TEXT = "Greylisted, see http://postgrey.schweikert.ch/help/%r.html"
#: postgrey's ``--x-greylist-header`` (line 635), naming us instead of postgrey-1.37.
X_GREYLIST = "delayed %t seconds by mxsim-greylist at %h; %d"
#: postgrey's shipped ``postgrey_whitelist_recipients``.
POSTGREY_WHITELIST_RECIPIENTS = ("postmaster@", "abuse@")
DAY, HOUR = 86400, 3600

#: A text that brings its own RFC 3463 code (Postfix dsn_split).
DSN_PREFIX = re.compile(r"([245])\.\d{1,3}\.\d{1,3}(?:\s+|\Z)")
_NUMBER = re.compile(r"\b\d+\b", re.ASCII)
_BATV_TAG = re.compile(r"[0-9a-z]{10}")


def _seconds(name: str, value: float, minimum: int) -> int:
    if isinstance(value, bool) or value != int(value) or value < minimum:
        raise ValueError(f"greylist {name}: whole seconds >= {minimum} expected, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class GreylistConfig:
    """postgrey's options, with its defaults (lines 613-636).

    Durations are seconds.  ``auto_whitelist_clients`` 0 switches the
    auto-whitelist off (``--auto-whitelist-clients=0``).  ``whitelist_clients``
    are IP networks, ``whitelist_recipients`` postgrey's recipient syntax
    (``domain``, ``user@``, ``user@domain``, ``/regexp/``).
    ``x_greylist_header`` None adds no header.
    """

    delay: float = 300
    max_age: float = 35 * DAY
    retry_window: float = 2 * DAY
    lookup_by_host: bool = False
    ipv4_cidr: int = 24
    ipv6_cidr: int = 64
    normalise_sender: bool = True
    auto_whitelist_clients: int = 5
    greylist_text: str = POSTGREY_TEXT
    x_greylist_header: str | None = X_GREYLIST
    whitelist_clients: tuple[str, ...] = ()
    whitelist_recipients: tuple[str, ...] = POSTGREY_WHITELIST_RECIPIENTS

    def __post_init__(self) -> None:
        for name, minimum in (("delay", 1), ("max_age", 1), ("retry_window", 1)):
            object.__setattr__(self, name, _seconds(name, getattr(self, name), minimum))
        if not 0 <= self.ipv4_cidr <= 32 or not 0 <= self.ipv6_cidr <= 128:
            raise ValueError("greylist ipv4_cidr must be 0-32 and ipv6_cidr 0-128")
        if self.auto_whitelist_clients < 0:
            raise ValueError("greylist auto_whitelist_clients must be >= 0 (0: off)")
        m = DSN_PREFIX.match(self.greylist_text)
        if not self.greylist_text or (m and m.group(1) != "4"):
            raise ValueError(f"greylist greylist_text: a 4.x.x text expected, "
                             f"got {self.greylist_text!r}")
        # Parsed once; a bad entry raises ValueError naming it.
        object.__setattr__(self, "_clients", Networks(self.whitelist_clients))
        object.__setattr__(self, "_rcpt_patterns",
                           tuple(_recipient_pattern(w) for w in self.whitelist_recipients))


def _recipient_pattern(entry: str) -> re.Pattern[str]:
    """postgrey ``read_recipients_whitelists`` (lines 91-112)."""
    if len(entry) > 2 and entry.startswith("/") and entry.endswith("/"):
        return re.compile(entry[1:-1], re.I)
    if not entry or any(c.isspace() for c in entry):
        raise ValueError(f"greylist whitelist_recipients: {entry!r} is not an address")
    user, at, domain = entry.partition("@")
    if at and domain:
        return re.compile(rf"^{re.escape(user)}(?:\+[^@]+)?@{re.escape(domain)}$", re.I)
    if at:
        return re.compile(rf"^{re.escape(user)}(?:\+[^@]+)?@", re.I)
    return re.compile(rf"(?:@|\.){re.escape(user)}$", re.I)


def normalise_sender(addr: str) -> str:
    """postgrey ``do_sender_substitutions`` (lines 124-153), verbatim."""
    user, at, domain = addr.partition("@")
    if not at:
        return addr
    if user.startswith("prvs="):
        parts = user.split("=")
        while parts and parts[-1] == "":       # Perl's split drops trailing empties
            parts.pop()
        if len(parts) == 3:
            tag1, tag2 = _BATV_TAG.match(parts[1]), _BATV_TAG.match(parts[2])
            if tag1 and not tag2:
                user = parts[2]
            elif tag2 and not tag1:
                user = parts[1]
            else:
                user = parts[2]                 # "throw a coin, pick the standard"
    user = re.sub(r"\+.*", "", user, count=1)
    user = _NUMBER.sub("#", user)
    return f"{user}@{domain}"


_IP = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse_ip(client_ip: str) -> _IP | None:
    try:
        return ipaddress.ip_address(client_ip)
    except ValueError:
        return None


def _network(cfg: GreylistConfig, ip: _IP) -> str:
    if cfg.lookup_by_host:
        return f"{ip}/{ip.max_prefixlen}"       # NetAddr::IP's string form
    bits = cfg.ipv4_cidr if ip.version == 4 else cfg.ipv6_cidr
    host_bits = ip.max_prefixlen - bits
    return str(type(ip)((int(ip) >> host_bits) << host_bits))


def client_network(cfg: GreylistConfig, client_ip: str) -> str | None:
    """The client part of the triplet (None: not an IP address)."""
    ip = _parse_ip(client_ip)
    return None if ip is None else _network(cfg, ip)


@dataclass(frozen=True)
class Query:
    """The facts of one RCPT as greylisting sees them.  ``now`` is whole
    seconds; ``client`` the full address (the auto-whitelist key); ``key``
    the triplet; ``header_due`` whether this message has no X-Greylist yet."""

    client_ip: str
    sender: str
    recipient: str
    now: int
    client: str = ""
    key: str = ""
    header_due: bool = True


def query_for(cfg: GreylistConfig, client_ip: str, sender: str, recipient: str,
              now: float, header_due: bool = True) -> Query:
    """Build the :class:`Query` (the triplet key and the client address)."""
    ip = _parse_ip(client_ip)
    if ip is None:
        return Query(client_ip, sender, recipient, math.floor(now), header_due=header_due)
    s = normalise_sender(sender) if cfg.normalise_sender else sender
    return Query(client_ip, sender, recipient, math.floor(now), client=str(ip),
                 key=f"{_network(cfg, ip)}/{s}/{recipient}".lower(), header_due=header_due)


__all__ = ["GreylistConfig", "Query", "query_for", "normalise_sender", "client_network",
           "POSTGREY_TEXT", "X_GREYLIST", "POSTGREY_WHITELIST_RECIPIENTS"]
