"""The virtual network: hosts' access links, connections and listeners.

Every host hangs off the Internet core by one access :class:`Link`.  A
connection between two hosts crosses the sender's link ("up" direction)
and the receiver's link ("down" direction): its one-way delay is the sum of
both latencies plus each link's serialisation time.  Each direction of a
link is a FIFO transmitter shared by every connection on it, so a 56k line
is slow for everyone on it.

While a link is down:

* new connections either time out after TCP-like SYN retransmissions
  (``down_connect="timeout"``: tries at 0, 1, 3, 7, 15, 31, 63 s, giving up
  at 127 s as Linux does with ``tcp_syn_retries=6``; a try made after the
  link returns succeeds), or are refused at once (``"refuse"``);
* open connections are reset (``down_open="reset"``: both ends see
  ECONNRESET) or black-holed (``"blackhole"``: bytes vanish and
  application timeouts fire in virtual time).

Access-network rules on a host's link act on its *outbound* port-25 traffic:
``port25="blocked"`` drops the SYNs (the connection times out), and
``port25_redirect=HOST`` transparently connects to HOST instead, while the
client still sees the address it asked for (the interception some ISPs do).
"""
from __future__ import annotations

import asyncio
import ipaddress
import itertools
import socket
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from sim.world.loop import Arrival, SimLoop
from sim.world.schedules import AlwaysUp, LinkSchedule
from sim.world.transport import SimServer, SimTransport


class Host(Protocol):
    """What the network needs of a host (:class:`sim.world.core.Host` is
    one): the network sits below the world and never imports it."""

    name: str
    ip: str
    link: "Link"
    loop: SimLoop

    def next_port(self) -> int: ...

# Linux tcp_syn_retries=6: retransmissions after 1, 2, 4, 8, 16, 32 s, then
# a final 64 s wait before ETIMEDOUT (127 s in all).
SYN_TRIES = (0.0, 1.0, 3.0, 7.0, 15.0, 31.0, 63.0)
SYN_GIVE_UP = 127.0


@dataclass(frozen=True)
class LinkSpec:
    """How a host is attached: latency (one way, seconds), bandwidth (bytes
    per second, ``None`` for unlimited), schedule, behaviour while down and
    access rules for outbound port 25."""

    latency: float = 0.005
    bandwidth: float | None = None
    schedule: LinkSchedule = field(default_factory=AlwaysUp)
    down_connect: str = "timeout"
    down_open: str = "reset"
    port25: str = "open"
    port25_redirect: str | None = None

    def __post_init__(self) -> None:
        if self.latency < 0:
            raise ValueError("latency must be >= 0")
        if self.bandwidth is not None and self.bandwidth <= 0:
            raise ValueError("bandwidth must be > 0 or None")
        if self.down_connect not in ("timeout", "refuse"):
            raise ValueError("down_connect must be 'timeout' or 'refuse'")
        if self.down_open not in ("reset", "blackhole"):
            raise ValueError("down_open must be 'reset' or 'blackhole'")
        if self.port25 not in ("open", "blocked"):
            raise ValueError("port25 must be 'open' or 'blocked'")


class Link:
    """A host's access link and its live state."""

    def __init__(self, name: str, spec: LinkSpec) -> None:
        self.name = name
        self.spec = spec
        self.up = spec.schedule.initial_up
        self.tx_busy = 0.0      # host -> core transmitter free at
        self.rx_busy = 0.0      # core -> host transmitter free at
        self.connections: dict[int, "Connection"] = {}   # insertion-ordered

    def serialise(self, now: float, nbytes: int, outbound: bool) -> float:
        """Time the last byte leaves this link's transmitter (FIFO shared)."""
        bw = self.spec.bandwidth
        if bw is None:
            return now
        if outbound:
            start = max(now, self.tx_busy)
            self.tx_busy = start + nbytes / bw
            return self.tx_busy
        start = max(now, self.rx_busy)
        self.rx_busy = start + nbytes / bw
        return self.rx_busy


class Connection:
    """A simulated TCP connection: two :class:`SimTransport` ends."""

    def __init__(self, network: "Network", seq: int, client: "Host", server: "Host") -> None:
        self.network = network
        self.seq = seq
        self.hosts = (client, server)
        self.ends: list[SimTransport] = []
        self.closed_ends = [False, False]
        # Hot-path shortcuts (one send per write): the two links, and the
        # scheduler's clock and timer queue.
        self._link0 = client.link
        self._link1 = server.link
        self._env = client.loop.scheduler.env
        self._push_timer = client.loop.scheduler.push_timer

    @property
    def links(self) -> tuple[Link, Link]:
        return (self._link0, self._link1)

    def path_up(self) -> bool:
        return self._link0.up and self._link1.up

    def deliverable(self, to_side: int) -> bool:
        """May bytes arriving now reach ``to_side``?  Not over a black hole."""
        return self._link0.up and self._link1.up

    def _arrival(self, from_side: int, nbytes: int) -> float:
        """When ``nbytes`` sent now from ``from_side`` reach the other end:
        both links' serialisation and latency, never before an earlier
        send in the same direction."""
        if from_side:
            src, dst = self._link1, self._link0
        else:
            src, dst = self._link0, self._link1
        sspec, dspec = src.spec, dst.spec
        now = self._env._now
        if sspec.bandwidth is None and dspec.bandwidth is None:
            # Same sums, in the same order, as the general case below.
            t = now + sspec.latency + dspec.latency
        else:
            t = src.serialise(now, nbytes, outbound=True) + sspec.latency
            t = dst.serialise(t, nbytes, outbound=False) + dspec.latency
        end = self.ends[from_side]
        if t < end._last_arrival:
            t = end._last_arrival
        end._last_arrival = t
        return t

    def send(self, from_side: int, data: bytes) -> None:
        if not (self._link0.up and self._link1.up):
            return                          # black hole: the bytes vanish
        peer = self.ends[1 - from_side]
        self._push_timer(Arrival(self._arrival(from_side, len(data)), peer._loop, peer._receive, data))

    def send_eof(self, from_side: int) -> None:
        if not (self._link0.up and self._link1.up):
            return
        peer = self.ends[1 - from_side]
        self._push_timer(Arrival(self._arrival(from_side, 0), peer._loop, peer._receive_eof, None))

    def send_reset(self, from_side: int) -> None:
        if not (self._link0.up and self._link1.up):
            return
        peer = self.ends[1 - from_side]
        self._push_timer(Arrival(self._arrival(from_side, 0), peer._loop, peer._receive_reset, None))

    def end_closed(self, side: int) -> None:
        self.closed_ends[side] = True
        if all(self.closed_ends):
            for link in self.links:
                link.connections.pop(self.seq, None)

    def reset_both(self) -> None:
        """The path went down with ``down_open="reset"``."""
        for end in self.ends:
            end._receive_reset()


class Network:
    """Hosts, their links and listeners, and how connections are made."""

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now
        self.hosts_by_ip: dict[str, "Host"] = {}
        self.hosts_by_name: dict[str, "Host"] = {}
        self.listeners: dict[tuple[str, int], SimServer] = {}
        self._conn_seq = itertools.count(1)
        self._literals: dict[str, str | None] = {}
        self.on_connect: Callable[..., None] | None = None

    # -- hosts and names --------------------------------------------------------
    def add_host(self, host: "Host") -> None:
        if host.ip in self.hosts_by_ip:
            raise ValueError(f"address {host.ip} is already taken by {self.hosts_by_ip[host.ip].name}")
        if host.name.lower() in self.hosts_by_name:
            raise ValueError(f"host name {host.name} is already taken")
        self.hosts_by_ip[host.ip] = host
        self.hosts_by_name[host.name.lower()] = host

    def address_of(self, name: str) -> str:
        """A host name or IPv4 literal to an address (the world's /etc/hosts)."""
        literal = self._literals.get(name, False)
        if literal is False:
            # Parsing is pure, and costs more than the rest of a connect:
            # remember each name's answer (an address, or None for a name).
            try:
                literal = str(ipaddress.IPv4Address(name))
            except ValueError:
                literal = None
            self._literals[name] = literal
        if literal is not None:
            return literal
        host = self.hosts_by_name.get(name.lower().rstrip("."))
        if host is None:
            raise socket.gaierror(socket.EAI_NONAME, f"Name or service not known: {name}")
        return host.ip

    def getaddrinfo(self, name: str, port: int | str | None) -> list[tuple]:
        ip = self.address_of(name)
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, int(port or 0)))]

    # -- link state -------------------------------------------------------------
    def set_link_state(self, host: "Host", up: bool) -> None:
        link = host.link
        if link.up == up:
            return
        link.up = up
        if not up and link.spec.down_open == "reset":
            for conn in list(link.connections.values()):
                conn.reset_both()

    # -- listening ----------------------------------------------------------------
    def listen(self, host: "Host", factory: Any, ip: str | None, port: int | None) -> SimServer:
        if ip in (None, "", "0.0.0.0", "::", "localhost", "127.0.0.1", host.name):
            ip = host.ip
        if ip != host.ip:
            raise OSError(99, f"cannot bind {ip}: {host.name} has address {host.ip}")
        if not port:
            raise ValueError("simulated servers need an explicit port")
        key = (ip, int(port))
        if key in self.listeners:
            raise OSError(98, f"address already in use: {ip}:{port}")
        server = SimServer(self, host, ip, int(port), factory)
        self.listeners[key] = server
        return server

    def unlisten(self, server: SimServer) -> None:
        self.listeners.pop((server.ip, server.port), None)

    # -- connecting -------------------------------------------------------------
    async def open_connection(self, client: "Host", factory: Any, name: str | None,
                              port: int | None) -> tuple[SimTransport, Any]:
        """``loop.create_connection`` for ``client``: SYN retries, refusals,
        access rules, then an established pair of transports."""
        if name is None or port is None:
            raise ValueError("simulated connections need a host and a port")
        asked_ip = self.address_of(name)
        port = int(port)
        target_ip = asked_ip
        blocked = False
        if port == 25 and client.link.spec.port25 == "blocked":
            blocked = True
        elif port == 25 and client.link.spec.port25_redirect:
            target_ip = self.address_of(client.link.spec.port25_redirect)
        server_host = self.hosts_by_ip.get(target_ip)
        start = self.now()
        for offset in SYN_TRIES:
            delay = start + offset - self.now()
            if delay > 0:
                await asyncio.sleep(delay)
            if blocked or server_host is None:
                continue                     # SYN dropped: no answer at all
            if not client.link.up:
                if client.link.spec.down_connect == "refuse":
                    raise ConnectionRefusedError(111, "Network is unreachable")
                continue
            if not server_host.link.up:
                if server_host.link.spec.down_connect == "refuse":
                    await asyncio.sleep(client.link.spec.latency * 2)
                    raise ConnectionRefusedError(111, "Connection refused")
                continue
            return await self._handshake(client, server_host, factory, asked_ip, target_ip, port)
        await asyncio.sleep(start + SYN_GIVE_UP - self.now())
        raise TimeoutError(110, "Connection timed out")

    async def _handshake(self, client: "Host", server_host: "Host", factory: Any,
                         asked_ip: str, target_ip: str, port: int) -> tuple[SimTransport, Any]:
        loop = client.loop
        one_way = client.link.spec.latency + server_host.link.spec.latency
        now = self.now()
        established: asyncio.Future = loop.create_future()
        conn = Connection(self, next(self._conn_seq), client, server_host)
        cport = client.next_port()

        def accept() -> None:          # runs on the server host's loop (pitfall 2)
            listener = self.listeners.get((target_ip, port))
            if listener is None or not conn.path_up():
                loop.call_at(now + 2 * one_way, _fail, ConnectionRefusedError(111, "Connection refused"))
                return
            client_end = SimTransport(conn, 0, loop, (client.ip, cport), (asked_ip, port))
            server_end = SimTransport(conn, 1, server_host.loop, (target_ip, port), (client.ip, cport))
            conn.ends = [client_end, server_end]
            client.link.connections[conn.seq] = conn
            server_host.link.connections[conn.seq] = conn
            server_end.attach(listener.factory())
            loop.call_at(now + 2 * one_way, _ok)

        def _ok() -> None:
            if not established.done():
                established.set_result(None)

        def _fail(exc: BaseException) -> None:
            if not established.done():
                established.set_exception(exc)

        server_host.loop.call_at(now + one_way, accept)
        try:
            await established
        except asyncio.CancelledError:
            # Pitfall 5: the connect was cancelled (an application timeout);
            # the half-open server end must not linger.
            if conn.ends:
                conn.ends[0]._closing = conn.ends[0]._lost = True
                conn.end_closed(0)
                conn.send_reset(0)
            raise
        client_end = conn.ends[0]
        protocol = factory()
        client_end.attach(protocol)
        if self.on_connect is not None:
            self.on_connect(client, server_host, asked_ip, target_ip, port)
        return client_end, protocol
