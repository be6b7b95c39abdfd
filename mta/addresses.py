"""Envelope address parsing for MAIL FROM and RCPT TO (RFC 5321 §4.1.2).

The parser is deliberately *lenient about syntax and strict about meaning*:
it accepts the odd forms that open-relay probes send (nmap's
``smtp-open-relay`` script, REFERENCE.md §3) so that policy can see them and
refuse them for what they are, instead of hiding behind a syntax error:

* source routes ``<@a,@b:user@c>`` are parsed and dropped (RFC 5321 §4.1.2
  and appendix C: accept the syntax, ignore the route);
* quoted local parts ``<"user@other"@host>`` are unquoted;
* a second ``@`` (``user@other@host``) stays in the local part;
* ``%`` and ``!`` (the "percent hack" and UUCP bang paths) stay in the local
  part.

An address whose local part still carries ``@``, ``%`` or ``!`` after that is
*routed*: it names a further destination, and relay control treats it as a
relay attempt unless the client may relay anyway (Postfix's
``allow_untrusted_routing = no``).

Errors raise :class:`AddressError`, which carries the reply to give.
"""
from __future__ import annotations

import ipaddress
import re
import sys
from dataclasses import dataclass

#: RFC 5321 §4.5.3.1: maximum lengths in octets.
MAX_LOCAL_PART = 64
MAX_DOMAIN = 255
MAX_PATH = 256

# atext of RFC 5322 §3.2.3 plus "." (dot-atom) plus the routing characters
# "@" (double-@ probes) that we keep so that policy can refuse them.
_LOCAL_CHARS = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.@]+\Z")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
# Characters that make a local part "routed": it names another destination.
ROUTING_CHARS = "@%!"


class AddressError(ValueError):
    """The peer sent an address we cannot parse; carries the reply to give."""

    def __init__(self, code: int, enhanced: str, text: str) -> None:
        super().__init__(f"{code} {enhanced} {text}")
        self.code = code
        self.enhanced = enhanced
        self.text = text


@dataclass(frozen=True, slots=True)
class Address:
    """One parsed envelope address.

    ``local`` is the local part without quoting; ``domain`` is lower-cased,
    ``""`` when the address is unqualified, and an address literal keeps its
    brackets (``[192.0.2.1]``).  ``route`` holds source-route hops, which
    are ignored for delivery.  The null reverse-path ``<>`` has both empty.
    """

    local: str
    domain: str
    route: tuple[str, ...] = ()
    quoted: bool = False

    @property
    def is_null(self) -> bool:
        return not self.local and not self.domain

    @property
    def is_literal(self) -> bool:
        return self.domain.startswith("[")

    @property
    def routed(self) -> bool:
        """True when the local part names a further destination
        (``user%host``, ``host!user``, ``user@host`` inside the local part)."""
        return any(c in self.local for c in ROUTING_CHARS)

    @property
    def mailbox(self) -> str:
        """The address as it goes into the envelope: route dropped, local
        part re-quoted when it is not a dot-atom, domain lower-cased."""
        if self.is_null:
            return ""
        local = self.local
        if not _is_dot_atom(local):
            local = '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'
        # Interned: the log keeps an address in every envelope it appears
        # in, and the same senders and recipients recur all run long.
        return sys.intern(f"{local}@{self.domain}" if self.domain else local)


def _is_dot_atom(s: str) -> bool:
    if not s or s.startswith(".") or s.endswith(".") or ".." in s:
        return False
    return re.fullmatch(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]+", s) is not None


def valid_domain(domain: str) -> bool:
    """A hostname (labels of letters, digits, inner hyphens) or an address
    literal ``[IPv4]`` / ``[IPv6:...]``.  A trailing dot is not allowed."""
    if not domain or len(domain) > MAX_DOMAIN:
        return False
    if domain.startswith("["):
        return literal_ip(domain) is not None
    labels = domain.split(".")
    return all(_LABEL.match(label) for label in labels)


def literal_ip(domain: str) -> str | None:
    """The IP inside an address literal, or None if it is not one."""
    if not (domain.startswith("[") and domain.endswith("]")):
        return None
    inner = domain[1:-1]
    if inner[:5].lower() == "ipv6:":
        inner = inner[5:]
        try:
            return str(ipaddress.IPv6Address(inner))
        except ValueError:
            return None
    try:
        return str(ipaddress.IPv4Address(inner))
    except ValueError:
        return None


def is_fqdn(name: str) -> bool:
    """Fully qualified hostname (at least two labels, valid syntax, last
    label not all digits), or an address literal.  Used for HELO checks."""
    if name.startswith("["):
        return literal_ip(name) is not None
    name = name[:-1] if name.endswith(".") else name
    if not valid_domain(name) or "." not in name:
        return False
    return not name.rsplit(".", 1)[1].isdigit()


def _scan_quoted(text: str, i: int) -> int:
    """Index just past the closing quote of a quoted string starting at i."""
    assert text[i] == '"'
    j = i + 1
    while j < len(text):
        c = text[j]
        if c == "\\":
            j += 2
            continue
        if c == '"':
            return j + 1
        j += 1
    raise AddressError(501, "5.1.3", "Bad address syntax: unterminated quoted string")


def split_path(arg: str) -> tuple[str, str]:
    """Split ``<path> params`` (or a bare address and params) into the path
    text (without angle brackets) and the parameter text."""
    s = arg.lstrip()
    if s.startswith("<"):
        i = 1
        while i < len(s):
            c = s[i]
            if c == '"':
                i = _scan_quoted(s, i)
                continue
            if c == ">":
                return s[1:i], s[i + 1:].strip()
            i += 1
        raise AddressError(501, "5.1.3", "Bad address syntax: missing '>'")
    # Bare address (RFC violation that real clients commit; Postfix accepts).
    i = 0
    while i < len(s) and not s[i].isspace():
        if s[i] == '"':
            i = _scan_quoted(s, i)
            continue
        i += 1
    return s[:i], s[i:].strip()


def parse_mailbox(path: str) -> Address:
    """Parse the text between the angle brackets (route allowed)."""
    if len(path) > MAX_PATH:
        raise AddressError(501, "5.1.3", "Path too long")
    if any(ord(c) < 33 or ord(c) == 127 for c in path if c != " ") or \
            (" " in path and '"' not in path):
        raise AddressError(501, "5.1.3", "Bad address syntax")
    if path == "":
        return Address("", "")
    route: tuple[str, ...] = ()
    if path.startswith("@"):
        # A-d-l: "@one,@two:" before the mailbox.
        colon = path.find(":")
        if colon < 0:
            raise AddressError(501, "5.1.3", "Bad address syntax: bad source route")
        hops = path[:colon].split(",")
        if not all(h.startswith("@") and valid_domain(h[1:].lower()) for h in hops):
            raise AddressError(501, "5.1.3", "Bad address syntax: bad source route")
        route = tuple(h[1:].lower() for h in hops)
        path = path[colon + 1:]
        if not path:
            raise AddressError(501, "5.1.3", "Bad address syntax")
    quoted = path.startswith('"')
    if quoted:
        end = _scan_quoted(path, 0)
        raw = path[1:end - 1]
        local = re.sub(r"\\(.)", r"\1", raw)
        rest = path[end:]
        if rest and not rest.startswith("@"):
            raise AddressError(501, "5.1.3", "Bad address syntax")
        domain = rest[1:]
        if rest and not domain:
            raise AddressError(501, "5.1.3", "Bad address syntax: empty domain")
    else:
        local, at, domain = path.rpartition("@")
        if not at:
            local, domain = path, ""
        elif not domain:
            raise AddressError(501, "5.1.3", "Bad address syntax: empty domain")
        if not local or not _LOCAL_CHARS.match(local):
            raise AddressError(501, "5.1.3", "Bad address syntax")
    if '"' in domain or (domain and not valid_domain(domain.lower())):
        raise AddressError(501, "5.1.3", "Bad address syntax: bad domain")
    if len(local) > MAX_LOCAL_PART:
        raise AddressError(553, "5.1.3", "Local part too long")
    if not quoted and local == "":
        raise AddressError(501, "5.1.3", "Bad address syntax")
    return Address(local=local, domain=domain.lower(), route=route, quoted=quoted)


def parse_path(arg: str) -> tuple[Address, str]:
    """Parse a MAIL/RCPT argument after ``FROM:``/``TO:``: the address and
    the ESMTP parameter text that follows it."""
    path, params = split_path(arg)
    return parse_mailbox(path), params


def parse_esmtp_params(text: str) -> dict[str, str | bool]:
    """``SIZE=123 BODY=8BITMIME`` -> ``{"SIZE": "123", "BODY": "8BITMIME"}``
    (keywords upper-cased, RFC 5321 §4.1.2 esmtp-keyword syntax)."""
    out: dict[str, str | bool] = {}
    for item in text.split():
        key, eq, value = item.partition("=")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]*", key) or (eq and not value):
            raise AddressError(501, "5.5.4", f"Bad parameter syntax: {item[:40]}")
        out[key.upper()] = value if eq else True
    return out


def parse_size_param(value: str | bool) -> int:
    """The value of ``SIZE=`` (RFC 1870 §6): a decimal number of octets."""
    if isinstance(value, bool) or not value.isdigit() or len(value) > 20:
        raise AddressError(501, "5.5.4", "Bad SIZE parameter syntax")
    return int(value)


def domain_matches(domain: str, patterns: "tuple[str, ...] | list[str]") -> bool:
    """``domain`` is one of ``patterns``; a pattern ``.example.net`` matches
    every subdomain of example.net (not example.net itself), Postfix-style."""
    d = domain.lower().rstrip(".")
    for p in patterns:
        p = p.lower()
        if p.startswith("."):
            if d.endswith(p):
                return True
        elif d == p:
            return True
    return False


#: nmap smtp-open-relay.nse defaults (REFERENCE.md §3).
NMAP_FROM = "antispam"
NMAP_TO = "relaytest"
NMAP_DOMAIN = "nmap.scanme.org"


def nmap_relay_probes(srv: str, ip: str, domain: str = NMAP_DOMAIN,
                      sender: str = NMAP_FROM, rcpt: str = NMAP_TO) -> list[tuple[str, str]]:
    """The 16 (MAIL FROM, RCPT TO) argument pairs of nmap's smtp-open-relay
    script, in its order: ``srv`` is the target's banner name, ``ip`` its
    address, ``domain`` the foreign domain relayed to.  A server that
    accepts any RCPT of these for a stranger is an open relay."""
    f, t = sender, rcpt
    lit = f"[{ip}]"
    return [
        ("<>", f"<{t}@{domain}>"),
        (f"<{f}@{domain}>", f"<{t}@{domain}>"),
        (f"<{f}@{srv}>", f"<{t}@{domain}>"),
        (f"<{f}@{lit}>", f"<{t}@{domain}>"),
        (f"<{f}@{lit}>", f"<{t}%{domain}@{lit}>"),
        (f"<{f}@{lit}>", f"<{t}%{domain}@{srv}>"),
        (f"<{f}@{lit}>", f'<"{t}@{domain}">'),
        (f"<{f}@{lit}>", f'<"{t}%{domain}">'),
        (f"<{f}@{lit}>", f"<{t}@{domain}@{lit}>"),
        (f"<{f}@{lit}>", f'<"{t}@{domain}"@{lit}>'),
        (f"<{f}@{lit}>", f"<{t}@{domain}@{srv}>"),
        (f"<{f}@{lit}>", f"<@{lit}:{t}@{domain}>"),
        (f"<{f}@{lit}>", f"<@{srv}:{t}@{domain}>"),
        (f"<{f}@{lit}>", f"<{domain}!{t}>"),
        (f"<{f}@{lit}>", f"<{domain}!{t}@{lit}>"),
        (f"<{f}@{lit}>", f"<{domain}!{t}@{srv}>"),
    ]
