"""Where a live host listens: ``--listen PORT=ADDR:PORT`` and its checks.

A scenario gives each server of a host a port (25, 587, the finger port,
the POP3 port); live, each one is bound to a real address.  ``PORT`` is the
scenario's port, ``ADDR:PORT`` the socket address (port 0: any free port,
printed when ready).  A port the option does not name listens on
127.0.0.1 at the scenario's own port.  Addresses are checked before
anything is written: an address in use or not local is refused by name.
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

#: Where a server listens when ``--listen`` does not say.
DEFAULT_ADDRESS = "127.0.0.1"
#: The key that binds the built-in zone server (a scenario with zones).
DNS_PORT = 53


class ListenError(ValueError):
    """A ``--listen`` (or ``--resolver``) value that cannot work; the
    message names the value and what was expected."""


@dataclass(frozen=True)
class Endpoint:
    """An IP address and a TCP/UDP port (0: any free port)."""

    address: str
    port: int

    def __str__(self) -> str:
        return f"[{self.address}]:{self.port}" if ":" in self.address else \
            f"{self.address}:{self.port}"


def parse_endpoint(text: str, option: str, allow_zero: bool = True) -> Endpoint:
    """``ADDR:PORT`` (IPv6 as ``[ADDR]:PORT``) as an :class:`Endpoint`."""
    addr, sep, port = text.rpartition(":")
    if not sep or not addr:
        raise ListenError(f"{option} {text!r}: expected ADDR:PORT, e.g. 127.0.0.1:2525")
    if addr.startswith("[") and addr.endswith("]"):
        addr = addr[1:-1]
    try:
        ipaddress.ip_address(addr)
    except ValueError:
        raise ListenError(f"{option} {text!r}: {addr!r} is not an IP address") from None
    if not port.isdigit() or not (0 if allow_zero else 1) <= int(port) <= 65535:
        low = 0 if allow_zero else 1
        raise ListenError(f"{option} {text!r}: the port must be a number from {low} to 65535")
    return Endpoint(addr, int(port))


def parse_listen(values: list[str]) -> dict[int, Endpoint]:
    """Every ``PORT=ADDR:PORT`` value, by scenario port (each named once)."""
    out: dict[int, Endpoint] = {}
    for value in values:
        key, sep, where = value.partition("=")
        if not sep or not key.isdigit() or not 0 < int(key) < 65536:
            raise ListenError(f"--listen {value!r}: expected PORT=ADDR:PORT, where PORT is the "
                              "scenario's port, e.g. 25=127.0.0.1:2525")
        if int(key) in out:
            raise ListenError(f"--listen {value!r}: port {key} is already given")
        out[int(key)] = parse_endpoint(where, "--listen")
    return out


def check_bindable(endpoint: Endpoint, kind: int = socket.SOCK_STREAM) -> None:
    """Bind ``endpoint`` once and let it go: an address in use, not local or
    forbidden (a port under 1024 without privilege) raises
    :class:`ListenError` before the host writes anything."""
    family = socket.AF_INET6 if ":" in endpoint.address else socket.AF_INET
    with socket.socket(family, kind) as s:
        if kind == socket.SOCK_STREAM:
            # asyncio's servers set it too, so a port in TIME_WAIT is not "in use"
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((endpoint.address, endpoint.port))
            if kind == socket.SOCK_STREAM:
                s.listen(1)   # a listening socket on the port is only found by listening
        except OSError as exc:
            raise ListenError(f"cannot listen on {endpoint}: {exc.strerror or exc}") from None
