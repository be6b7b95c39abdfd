"""The POP3 server: a thin asyncio edge around :class:`Pop3Session`.

Everything protocol-shaped is decided by the pure session; this module only
splits bytes into lines, enforces RFC 2449's line limit, waits out login
delays and the idle timeout in loop time, runs STLS with
``loop.start_tls``, and turns the session's facts into events:

* :class:`~mta.events.ConnectionOpened` (``service="pop3"``) and
  :class:`~mta.events.ConnectionClosed` (``quit``, ``timeout``, ``reset``,
  ``closed``, ``cut-off``, ``tls-failed``, ``shutdown``);
* :class:`~mta.events.Pop3Login` for every successful login, and the
  optional ``on_login(client_ip, user, t)`` hook (POP-before-SMTP grants);
* :class:`~mta.events.PolicyDecision` with stage ``pop3-auth`` for a failed
  login (``fail``), a throttled reply (``delay``), a disconnect after too
  many failures (``disconnect``) and a locked maildrop (``in-use``);
* :class:`~mta.events.ComponentError` when the maildrop store or the hook
  raises (the client gets ``-ERR``; the server keeps serving).

All I/O goes through ``loop.create_server``, so the server runs on real
sockets and on the simulated loop alike.
"""
from __future__ import annotations

import asyncio
import collections
import ssl as _ssl
from typing import Any, Callable, Mapping

from mta.context import HostContext
from mta.events import (ComponentError, ConnectionClosed, ConnectionOpened, PolicyDecision,
                        Pop3Login)
from mta.pop3 import commands as C
from mta.pop3.maildrop import MaildropLocks, Maildrops
from mta.pop3.session import Account, Pop3Session, Step, accounts_from
from mta.pop3.throttle import LoginThrottle, ThrottleConfig

POP3_PORT = 110
#: RFC 1939 §3: an autologout timer "MUST be of at least 10 minutes".
MIN_IDLE_TIMEOUT = 600.0
#: Pipelined lines read ahead of the session before reading pauses.
MAX_PENDING = 32

_TOO_LONG = object()    # queue marker: a line over MAX_LINE was skipped

LoginHook = Callable[[str, str, float], None]


class Pop3Protocol(asyncio.Protocol):
    """One POP3 connection."""

    def __init__(self, server: "Pop3Server") -> None:
        self.server = server
        self.transport: Any = None
        self.session: Pop3Session | None = None
        self.conn = ""
        self.client_ip = ""
        self.buf = bytearray()
        self.skipping = False            # inside an over-long line, dropping to its LF
        self.pending: collections.deque[Any] = collections.deque()
        self.busy = False                # a delayed reply or a TLS handshake is under way
        self.tls_pending = False         # between "+OK Begin TLS" and the handshake's end
        self.paused = False              # we paused reading (too many pipelined lines)
        self.write_paused = False        # the transport asked us to stop writing
        self.closing = False
        self.eof = False                 # the client half-closed with lines still queued
        self.ended = False
        self.reason = ""
        self.deadline = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.delay_handle: asyncio.TimerHandle | None = None

    # -- connection life ---------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        srv, ctx = self.server, self.server.ctx
        self.transport = transport
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        self.client_ip = peer[0] if isinstance(peer, tuple) else str(peer or "")
        self.conn = ctx.next_id("c")
        srv.emit(ConnectionOpened, conn=self.conn, client_ip=self.client_ip,
                 port=sock[1] if isinstance(sock, tuple) else 0, service="pop3")
        srv.active.append(self)
        # APOP's challenge, <serial.clock@host> (RFC 1939 §7): the serial is
        # this connection's number, the clock the context's (virtual in the
        # simulation), so it is unique per connection and deterministic.
        serial = self.conn.rpartition("/")[2].lstrip("c") or "0"
        stamp = f"<{serial}.{int(ctx.now() * 1_000_000)}@{ctx.hostname}>" if srv.apop else ""
        self.session = Pop3Session(
            hostname=ctx.hostname, conn=self.conn, client_ip=self.client_ip,
            accounts=srv.accounts, drops=srv.drops, locks=srv.locks, throttle=srv.throttle,
            timestamp=stamp, tls_offered=srv.ssl is not None, implementation=srv.implementation)
        transport.write(self.session.greeting())  # type: ignore[attr-defined]
        loop = asyncio.get_running_loop()
        self.deadline = loop.time() + srv.idle_timeout
        self.timer = loop.call_at(self.deadline, self._idle)

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        if self.tls_pending and self.transport.get_protocol() is self:
            return               # cleartext after STLS, before the TLS layer took over: never obeyed
        # (during the handshake's last steps the TLS layer may already hand
        # us decrypted lines: they queue until tls_started, as ``busy``)
        self.buf += data
        while True:
            end = self.buf.find(b"\n")
            if end < 0:
                if len(self.buf) >= C.MAX_LINE and not self.skipping:
                    # No LF within 255 octets: over the limit whatever follows.
                    self.skipping = True
                    self.pending.append(_TOO_LONG)
                if self.skipping:
                    self.buf.clear()     # never keep what we will not read
                break
            line = bytes(self.buf[:end])
            del self.buf[:end + 1]
            if self.skipping:
                self.skipping = False    # the rest of the over-long line ends here
                continue
            if line.endswith(b"\r"):
                line = line[:-1]
            self.pending.append(_TOO_LONG if len(line) + 2 > C.MAX_LINE else line)
        if len(self.pending) > MAX_PENDING and not self.paused:
            self.paused = True
            self.transport.pause_reading()
        self._pump()

    def pause_writing(self) -> None:
        # A client that pipelines RETRs without reading would otherwise make
        # us buffer every copy; stop answering until its buffer drains.
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if not self.closing:
            self._pump()

    def eof_received(self) -> bool:
        if self.pending or self.busy:
            # A client may send "DELE 1\r\nQUIT\r\n" and half-close at once:
            # answer what it sent (the QUIT included), then close.
            self.eof = True
            return True
        self.reason = self.reason or "closed"
        return False             # close our side too; the lock is freed in connection_lost

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(self.reason or ("reset" if exc else "closed"))

    def _end(self, reason: str) -> None:
        if self.ended:
            return
        self.ended = self.closing = True
        for h in (self.timer, self.delay_handle):
            if h is not None:
                h.cancel()
        if self.session is not None:
            self.session.end()   # unlock; a dropped session deletes nothing
        if self in self.server.active:
            self.server.active.remove(self)
        self.server.emit(ConnectionClosed, conn=self.conn, reason=reason)

    # -- commands ---------------------------------------------------------------------
    def _pump(self) -> None:
        assert self.session is not None
        while self.pending and not self.busy and not self.closing and not self.write_paused:
            item = self.pending.popleft()
            loop = asyncio.get_running_loop()
            self.deadline = loop.time() + self.server.idle_timeout
            if item is _TOO_LONG:
                step = self.session.too_long()
            else:
                step = self.session.handle(item, self.server.ctx.now())
            self._record(step)
            if step.delay > 0:
                self.busy = True
                self.delay_handle = loop.call_later(step.delay, self._send_delayed, step)
                break
            self._send(step)
        if self.eof and not self.pending and not self.busy and not self.closing:
            self._close("closed")
        if self.paused and len(self.pending) <= MAX_PENDING // 2 and not self.closing:
            self.paused = False
            self.transport.resume_reading()

    def _send_delayed(self, step: Step) -> None:
        self.delay_handle = None
        self.busy = False
        if not self.closing:
            self._send(step)
            self._pump()

    def _send(self, step: Step) -> None:
        self.transport.write(step.reply)
        if step.close:
            self._close(step.close)
        elif step.start_tls:
            # Anything pipelined after STLS was sent in the clear before the
            # handshake and must not be obeyed (the STARTTLS injection flaw).
            self.pending.clear()
            self.buf.clear()
            self.busy = self.tls_pending = True
            asyncio.get_running_loop().create_task(self._start_tls())

    def _close(self, reason: str) -> None:
        self.reason = self.reason or reason
        self.closing = True
        self.pending.clear()
        self.transport.close()

    async def _start_tls(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            tls = await loop.start_tls(self.transport, self, self.server.ssl, server_side=True,
                                       ssl_handshake_timeout=self.server.handshake_timeout)
        except (OSError, TypeError, ValueError, ConnectionError, asyncio.TimeoutError,
                _ssl.SSLError) as exc:
            self.server.emit(PolicyDecision, conn=self.conn, stage="pop3-stls",
                             decision="handshake-failed", client_ip=self.client_ip,
                             detail=f"{type(exc).__name__}: {exc}"[:200])
            # The old transport now belongs to the TLS layer, which does not
            # report a loss during the handshake: end the session here.
            self.transport.close()
            self._end("tls-failed")
            return
        if self.ended:
            return
        self.transport = tls
        assert self.session is not None
        self.session.tls_started()
        self.busy = self.tls_pending = False
        self._pump()

    def _idle(self) -> None:
        self.timer = None
        if self.closing:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < self.deadline or self.busy:
            # Activity since the timer was set (or a delayed reply pending):
            # re-arm for the rest instead of re-creating a timer per command.
            self.timer = loop.call_at(loop.time() + 1.0 if self.busy else self.deadline, self._idle)
            return
        self.transport.write(C.err(C.E_TIMEOUT))
        self._close("timeout")

    # -- the record --------------------------------------------------------------------
    def _record(self, step: Step) -> None:
        srv, t = self.server, self.server.ctx.now()
        for f in step.facts:
            if f.what == "login":
                srv.emit(Pop3Login, client_ip=self.client_ip, user=f.user)
                srv.logged_in(self.client_ip, f.user, t)
            elif f.what in ("login-failed", "delay", "cut-off", "in-use"):
                decision = {"login-failed": "fail", "delay": "delay", "cut-off": "disconnect",
                            "in-use": "in-use"}[f.what]
                srv.emit(PolicyDecision, conn=self.conn, stage="pop3-auth", decision=decision,
                         client_ip=self.client_ip, detail=f"user {f.user!r}: {f.detail}"[:200])
            elif f.what == "store-error":
                srv.emit(ComponentError, where="pop3 maildrop", error=f.detail)


class Pop3Server:
    """The POP3 service of one host.

    ``drops`` is a :class:`~mta.pop3.maildrop.Maildrops` (for the MX roles'
    store: ``MailboxStoreDrops(store)``).  ``users`` is ``{user: password}``
    and ``mailboxes`` ``{user: mailbox}`` (default: the user's own name);
    user names are matched exactly.  ``ssl``: an ``ssl.SSLContext`` makes
    STLS available.  ``on_login(client_ip, user, t)`` is called after every
    successful login.  ``locks`` may be shared with another server over the
    same store.  ``throttle``: a :class:`ThrottleConfig` or a shared
    :class:`LoginThrottle`.
    """

    def __init__(self, ctx: HostContext, drops: Maildrops, users: Mapping[str, str], *,
                 mailboxes: Mapping[str, str] | None = None, port: int = POP3_PORT,
                 ssl: _ssl.SSLContext | None = None, idle_timeout: float = MIN_IDLE_TIMEOUT,
                 throttle: ThrottleConfig | LoginThrottle | None = None,
                 locks: MaildropLocks | None = None, on_login: LoginHook | None = None,
                 apop: bool = True, implementation: str = "mxsim",
                 handshake_timeout: float = 60.0) -> None:
        if idle_timeout < MIN_IDLE_TIMEOUT:
            raise ValueError(f"RFC 1939 wants an idle timeout of at least {MIN_IDLE_TIMEOUT:g} s, "
                             f"got {idle_timeout!r}")
        if ssl is not None and not isinstance(ssl, _ssl.SSLContext):
            raise TypeError("ssl must be an ssl.SSLContext")
        self.ctx = ctx
        self.drops = drops
        self.accounts: dict[str, Account] = accounts_from(users, mailboxes)
        self.port = port
        self.ssl = ssl
        self.idle_timeout = float(idle_timeout)
        self.throttle = throttle if isinstance(throttle, LoginThrottle) else LoginThrottle(
            throttle or ThrottleConfig())
        self.locks = locks if locks is not None else MaildropLocks()
        self.on_login = on_login
        self.apop = apop
        self.implementation = implementation
        self.handshake_timeout = handshake_timeout
        self.active: list[Pop3Protocol] = []
        self.server: asyncio.AbstractServer | None = None

    def emit(self, cls: type, **kw: Any) -> None:
        self.ctx.sink.emit(cls(t=self.ctx.now(), host=self.ctx.hostname, **kw))

    def logged_in(self, client_ip: str, user: str, t: float) -> None:
        if self.on_login is None:
            return
        try:
            self.on_login(client_ip, user, t)
        except Exception as exc:  # noqa: BLE001 - a broken hook must not kill the session
            self.emit(ComponentError, where="pop3 on_login", error=f"{type(exc).__name__}: {exc}")

    def protocol(self) -> Pop3Protocol:
        return Pop3Protocol(self)

    async def start(self, host: str | None = None, port: int | None = None) -> asyncio.AbstractServer:
        """Listen on ``host:port`` (default: every address, ``self.port``)."""
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            self.protocol, host=host, port=self.port if port is None else port)
        return self.server

    async def stop(self) -> None:
        """Stop listening and close open sessions (nothing is deleted)."""
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        for p in list(self.active):
            p._close("shutdown")
