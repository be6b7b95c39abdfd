"""In-memory stream transports and listening servers for the simulated network.

A :class:`SimTransport` is one end of a simulated TCP connection.  Bytes
written on one end reach the peer's protocol after the path's latency plus
their size over the (shared) bandwidth, in order.  Both ends follow the
asyncio transport contract closely enough for aiosmtpd's StreamReader and
aiosmtplib's protocol, including the pitfalls DESIGN.md lists:

* bytes that arrive before the protocol is attached (the greeting can beat
  the client's ``connection_made``) are buffered, then delivered (pitfall 3);
* on EOF, a protocol whose ``eof_received`` returns a true value (asyncio's
  stream protocol, used by aiosmtpd) keeps a half-open connection, and one
  that returns a false value (aiosmtplib) gets the transport closed for it,
  as the selector transports do (pitfall 4);
* ``pause_reading``/``resume_reading`` buffer incoming bytes (aiosmtpd pauses
  at 2 KiB).
"""
from __future__ import annotations

import asyncio
from typing import Any, Protocol


class Connection(Protocol):
    """What a transport needs of its connection
    (:class:`sim.world.network.Connection` is one): the transport sits below
    the network and never imports it."""

    ends: list[Any]

    def deliverable(self, side: int) -> bool: ...
    def send(self, side: int, data: bytes) -> None: ...
    def send_eof(self, side: int) -> None: ...
    def send_reset(self, side: int) -> None: ...
    def end_closed(self, side: int) -> None: ...


class SimTransport(asyncio.Transport):
    """One end of a simulated connection."""

    def __init__(self, conn: "Connection", side: int, loop: asyncio.AbstractEventLoop,
                 sockname: tuple[str, int], peername: tuple[str, int]) -> None:
        super().__init__()
        self._conn = conn
        self._side = side                     # 0 = client end, 1 = server end
        self._loop = loop
        self._protocol: asyncio.BaseProtocol | None = None
        self._extra = {"sockname": sockname, "peername": peername, "socket": None}
        self._closing = False                 # we closed or aborted: no more writes
        self._lost = False                    # connection_lost has been scheduled
        self._paused = False
        self._pending: list[bytes] = []       # arrived while paused or unattached
        self._eof_pending = False
        self._last_arrival = 0.0              # keeps this direction in order
        self.bytes_sent = 0

    # -- wiring ---------------------------------------------------------------
    @property
    def peer(self) -> "SimTransport":
        return self._conn.ends[1 - self._side]

    def attach(self, protocol: asyncio.BaseProtocol) -> None:
        """Attach the protocol, call ``connection_made``, then hand over
        whatever arrived before it (pitfall 3)."""
        self._protocol = protocol
        protocol.connection_made(self)
        if self._pending or self._eof_pending:
            self._loop.call_soon(self._flush)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:  # type: ignore[override]
        return self._protocol  # type: ignore[return-value]

    def is_closing(self) -> bool:
        return self._closing or self._lost

    # -- reading --------------------------------------------------------------
    def is_reading(self) -> bool:
        return not self._paused and not self.is_closing()

    def pause_reading(self) -> None:
        self._paused = True

    def resume_reading(self) -> None:
        if self._paused:
            self._paused = False
            if self._pending or self._eof_pending:
                self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        while self._pending and not self._paused and not self._lost and self._protocol:
            data = self._pending.pop(0)
            self._protocol.data_received(data)  # type: ignore[attr-defined]
        if (self._eof_pending and not self._pending and not self._paused
                and not self._lost and self._protocol):
            self._eof_pending = False
            self._deliver_eof()

    def _receive(self, data: bytes) -> None:
        """Bytes arrive from the peer (scheduled by the peer's ``write``)."""
        if self._lost or not self._conn.deliverable(self._side):
            return
        if self._paused or self._protocol is None or self._pending:
            self._pending.append(data)
            if not self._paused and self._protocol is not None:
                self._loop.call_soon(self._flush)
            return
        self._protocol.data_received(data)  # type: ignore[attr-defined]

    def _receive_eof(self) -> None:
        if self._lost or not self._conn.deliverable(self._side):
            return
        if self._paused or self._protocol is None or self._pending:
            self._eof_pending = True
            return
        self._deliver_eof()

    def _deliver_eof(self) -> None:
        keep_open = self._protocol.eof_received()  # type: ignore[union-attr]
        if not keep_open:
            # The selector transport closes itself here (pitfall 4).
            self.close()

    def _receive_reset(self) -> None:
        if self._lost:
            return
        self._closing = True
        self._lose(ConnectionResetError(104, "Connection reset by peer"))

    # -- writing --------------------------------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or self._lost or not data:
            return
        if type(data) is not bytes:
            data = bytes(data)          # the caller may reuse its buffer
        self.bytes_sent += len(data)
        self._conn.send(self._side, data)

    def writelines(self, list_of_data) -> None:  # type: ignore[override]
        self.write(b"".join(list_of_data))

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self._closing or self._lost:
            return
        self._conn.send_eof(self._side)

    def get_write_buffer_size(self) -> int:
        return 0

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (0, 0)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    # -- closing --------------------------------------------------------------
    def close(self) -> None:
        if self._closing or self._lost:
            return
        self._closing = True
        self._conn.send_eof(self._side)
        self._lose(None)

    def abort(self) -> None:
        if self._lost:
            return
        self._closing = True
        self._conn.send_reset(self._side)
        self._lose(None)

    def _lose(self, exc: BaseException | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._pending.clear()
        self._conn.end_closed(self._side)
        if self._protocol is not None:
            self._loop.call_soon(self._protocol.connection_lost, exc)


class SimServer(asyncio.AbstractServer):
    """What ``loop.create_server`` returns: a listener on ``(ip, port)``."""

    def __init__(self, network: Any, host: Any, ip: str, port: int, factory: Any) -> None:
        self._network = network
        self._host = host
        self.ip = ip
        self.port = port
        self.factory = factory
        self._serving = True
        self.sockets: tuple = ()

    def close(self) -> None:
        if self._serving:
            self._serving = False
            self._network.unlisten(self)

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._host.loop

    def is_serving(self) -> bool:
        return self._serving

    async def start_serving(self) -> None:
        return None

    async def serve_forever(self) -> None:
        while self._serving:
            await asyncio.sleep(3600)

    async def wait_closed(self) -> None:
        return None

    async def __aenter__(self) -> "SimServer":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()
