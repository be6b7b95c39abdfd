"""SMTP-on-Demand over finger (RFC 1288).

A dial-up customer that comes back online runs ``finger domain@exchanger``:
its finger client connects to the exchanger's port 79 and sends
``domain\\r\\n``.  The exchanger starts delivery of the mail it holds for
that domain (over new outbound connections, through its
:class:`~mta.interfaces.ReleaseTarget`), answers a short status line and
closes, as finger servers do.

Queries (RFC 1288 §2.3, ``{Q1} ::= [{W}|{W}{S}{U}]{C}``):

* ``domain`` or ``/W domain``: release the domain's mail;
* anything containing ``@`` is a forwarding request ({Q2}) and is refused
  with "finger forwarding service denied";
* an empty query (a user list request) gets a usage line;
* anything else (bad syntax, 8-bit bytes, an over-long line, no line at
  all before the timeout) gets an error line, never a crash.

Like ETRN, a query is decided in three steps, the outer two pure:
:func:`decide_query` (refuse with an answer, or release the domain),
:func:`release` (the queue, the I/O), :func:`finger_answer` (counts to the
answer line); :func:`answer_query` runs them in order.

Every query is one :class:`~mta.events.FingerQuery` event, between
ConnectionOpened and ConnectionClosed events with service ``finger``.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Callable

from mta.addresses import domain_matches, valid_domain
from mta.context import HostContext
from mta.events import ComponentError, ConnectionClosed, ConnectionOpened, FingerQuery
from mta.interfaces import ReleaseTarget
from mta.ondemand import FINGER_PORT

MAX_QUERY = 512           # octets; longer queries are refused unread
QUERY_TIMEOUT = 60.0      # seconds to wait for the query line

A_FORWARDING = "finger forwarding service denied"
A_USAGE = "usage: finger <domain>@<this host> starts delivery of mail held for <domain>"
A_BAD = "finger: bad query"
A_TOO_LONG = "finger: query too long"
A_TIMEOUT = "finger: timeout"


@dataclass(frozen=True, slots=True)
class FingerRequest:
    """A parsed query: ``kind`` is ``domain``, ``forward``, ``list`` or
    ``bad``; ``domain`` is set for ``domain``."""

    kind: str
    domain: str = ""
    verbose: bool = False


def parse_query(raw: bytes) -> FingerRequest:
    """Parse one query line (without its CRLF).  Never raises."""
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return FingerRequest("bad")
    if any(ord(c) < 32 and c != "\t" or ord(c) == 127 for c in text):
        return FingerRequest("bad")
    words = text.split()
    verbose = bool(words) and words[0].upper() == "/W"
    if verbose:
        words = words[1:]
    if "@" in text:
        return FingerRequest("forward", verbose=verbose)
    if not words:
        return FingerRequest("list", verbose=verbose)
    if len(words) != 1:
        return FingerRequest("bad", verbose=verbose)
    name = words[0].lower()
    if name.endswith("."):
        name = name[:-1]
    if not valid_domain(name) or name.startswith("["):
        return FingerRequest("bad", verbose=verbose)
    return FingerRequest("domain", name, verbose)


def decide_query(req: FingerRequest, domains: tuple[str, ...] | None = None) -> str | None:
    """The answer when ``req`` releases nothing, or None: release ``req.domain``.
    ``domains``: the domains this server releases on request (None: any)."""
    if req.kind == "forward":
        return A_FORWARDING
    if req.kind == "list":
        return A_USAGE
    if req.kind != "domain":
        return A_BAD
    if domains is not None and not domain_matches(req.domain, domains):
        return f"{req.domain}: no mail is held here for this domain"
    return None


def unable(domain: str) -> str:
    """The answer when there is no queue or it failed to release."""
    return f"{domain}: unable to start delivery now"


def release(domain: str, target: ReleaseTarget, client_ip: str) -> tuple[int, int]:
    """Ask ``target`` to start the mail held for ``domain``: (held, started)."""
    held = target.held_count(domain, False)
    started = target.release(domain, False, "finger", client_ip) if held else 0
    return held, started


def finger_answer(domain: str, held: int, started: int) -> str:
    """The answer once the release ran."""
    if started:
        return f"{domain}: delivery of {started} queued messages started"
    if held:
        return f"{domain}: {held} queued messages already being delivered"
    return f"{domain}: no messages queued"


def answer_query(req: FingerRequest, *, target: ReleaseTarget | None, client_ip: str,
                 domains: tuple[str, ...] | None = None,
                 on_error: Callable[[Exception], None] | None = None) -> tuple[str, int]:
    """Decide, release through ``target`` when asked, answer: the answer
    text and how many messages it started.  ``on_error`` is told when the
    queue fails to release (the client only reads "unable to start
    delivery now")."""
    refused = decide_query(req, domains)
    if refused is not None:
        return refused, 0
    d = req.domain
    if target is None:
        return unable(d), 0
    try:
        held, started = release(d, target, client_ip)
    except Exception as exc:
        if on_error is not None:
            on_error(exc)
        return unable(d), 0
    return finger_answer(d, held, started), started


class FingerProtocol(asyncio.Protocol):
    """One finger connection: read a line, answer, close."""

    def __init__(self, listener: "FingerListener") -> None:
        self.listener = listener
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.conn = ""
        self.client_ip = ""
        self.done = False
        self.timer: asyncio.TimerHandle | None = None
        self.reason = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        self.client_ip = peer[0] if isinstance(peer, tuple) else str(peer or "")
        ctx = self.listener.ctx
        self.conn = ctx.next_id("c")
        self.listener.emit(ConnectionOpened, conn=self.conn, client_ip=self.client_ip,
                           port=sock[1] if isinstance(sock, tuple) else 0, service="finger")
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(self.listener.timeout, self._timeout)

    def data_received(self, data: bytes) -> None:
        if self.done:
            return
        self.buf += data
        end = self.buf.find(b"\n")
        if end < 0:
            if len(self.buf) > MAX_QUERY:
                self._finish(bytes(self.buf[:80]), A_TOO_LONG, 0)
            return
        line = bytes(self.buf[:end]).rstrip(b"\r")
        if len(line) > MAX_QUERY:
            return self._finish(line[:80], A_TOO_LONG, 0)
        req = parse_query(line)
        text, started = answer_query(req, target=self.listener.release,
                                     client_ip=self.client_ip, domains=self.listener.domains,
                                     on_error=self._release_failed)
        self._finish(line, text, started)

    def _release_failed(self, exc: Exception) -> None:
        self.listener.emit(ComponentError, where="finger release",
                           error=f"{type(exc).__name__}: {exc}")

    def eof_received(self) -> bool:
        if not self.done:
            self._finish(bytes(self.buf[:80]), A_BAD, 0)
        return False

    def _timeout(self) -> None:
        if not self.done:
            self.reason = "timeout"
            self._finish(bytes(self.buf[:80]), A_TIMEOUT, 0)

    def _finish(self, query: bytes, text: str, started: int) -> None:
        self.done = True
        if self.timer is not None:
            self.timer.cancel()
        self.listener.emit(FingerQuery, conn=self.conn, client_ip=self.client_ip,
                           query=query.decode("ascii", "replace"), answer=text,
                           released=started)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(text.encode("ascii", "replace") + b"\r\n")
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if not self.done:
            self.done = True
            self.reason = "reset"
        self.listener.emit(ConnectionClosed, conn=self.conn,
                           reason=self.reason or ("reset" if exc else "closed"))


class FingerListener:
    """The SMTP-on-Demand finger service of one host."""

    def __init__(self, ctx: HostContext, release: ReleaseTarget | None, *, port: int = FINGER_PORT,
                 domains: tuple[str, ...] | None = None,
                 timeout: float = QUERY_TIMEOUT) -> None:
        self.ctx = ctx
        self.release = release
        self.port = port
        self.domains = domains
        self.timeout = timeout
        self.server: asyncio.AbstractServer | None = None

    def emit(self, cls: type, **kw: Any) -> None:
        self.ctx.sink.emit(cls(t=self.ctx.now(), host=self.ctx.hostname, **kw))

    def protocol(self) -> FingerProtocol:
        return FingerProtocol(self)

    async def start(self, host: str | None = None, port: int | None = None) -> asyncio.AbstractServer:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            self.protocol, host=host, port=self.port if port is None else port)
        return self.server

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
