"""Outbound SMTP delivery: the client transaction.

:class:`Deliverer` takes one message and the recipients of one domain and
tries to hand them to the next hop, returning one :class:`RcptOutcome` per
recipient (``relayed``, ``bounced`` or ``deferred``).  It never touches the
queue's state: the queue manager records the outcomes, all of one
transaction together.

Where to try (RFC 5321 §5.1, RFC 7505: routes, MX order, null MX, implicit
MX) is the :class:`~mta.delivery.routing.Router`'s answer.  What each reply
means (fall back to the next address, defer, bounce) is looked up in the
table of :mod:`mta.delivery.reply_rules`.  Connections are cached per
destination and reused by the next transaction (Postfix's connection cache).
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Callable

import aiosmtplib

from mta import events as ev
from mta.context import HostContext
from mta.delivery.reply_rules import Action, Stage, action_for
from mta.delivery.routing import Destination, Route, RouteFailure, Router

# Synthetic replies for failures that happen before any server answered.
CONNECT_FAILED = (421, "4.4.1 Connection to the destination failed")
CONNECT_TIMEOUT = (421, "4.4.2 Connection to the destination timed out")
LOST_CONNECTION = (421, "4.4.2 Lost connection with the destination")

RELAYED, BOUNCED, DEFERRED = "relayed", "bounced", "deferred"


@dataclass
class DeliveryConfig:
    """Outbound settings.  Timeouts are small and explicit on purpose: the
    RFC minimums (5 min greeting...) are the server's to tolerate, and a
    simulation wants failures to show up in bounded virtual time."""

    port: int = 25
    ports: dict[str, int] = field(default_factory=dict)    # per IP override (tests, live bench)
    routes: dict[str, Route] = field(default_factory=dict)  # domain (or "*") -> Route
    mx_names: tuple[str, ...] = ()   # names this host appears under in MX records
    connect_timeout: float = 30.0
    command_timeout: float = 60.0
    max_addresses: int = 5           # Postfix smtp_mx_address_limit
    max_sessions: int = 2            # Postfix smtp_mx_session_limit
    reuse: bool = True
    max_idle_per_dest: int = 20
    idle_timeout: float = 5.0


@dataclass(frozen=True)
class RcptOutcome:
    """What became of one recipient in one delivery round."""

    rcpt: str
    status: str           # relayed / bounced / deferred
    code: int
    text: str
    dest_host: str = ""
    dest_ip: str = ""


def connect_outcome(exc: BaseException) -> str:
    """How a connection attempt failed: ``timeout``, ``refused`` or ``reset``
    (the ``outcome`` of a ConnectAttempt).  aiosmtplib wraps the OSError;
    the simulated network raises ConnectionRefusedError itself.  A refusing
    greeting (554) is ``refused``, for callers that do not record it as a
    connection with its greeting, as the Deliverer does."""
    if isinstance(exc, (asyncio.TimeoutError, aiosmtplib.SMTPTimeoutError)):
        return "timeout"
    if isinstance(exc, aiosmtplib.SMTPConnectResponseError):
        return "refused"
    cause = exc.__cause__ or exc
    if isinstance(cause, ConnectionRefusedError) or "refused" in str(exc).lower():
        return "refused"
    return "reset"


class ConnectionCache:
    """Idle SMTP connections per (ip, port), reused by later transactions."""

    def __init__(self, config: DeliveryConfig) -> None:
        self.config = config
        self._idle: dict[tuple[str, int], list[tuple[aiosmtplib.SMTP, asyncio.TimerHandle]]] = {}
        self.reused = 0
        # QUIT tasks in flight, kept so they cannot be garbage-collected
        # half-way (the loop holds tasks only weakly); keyed by a counter.
        self._closing: dict[int, asyncio.Task] = {}
        self._closing_seq = 0

    def take(self, key: tuple[str, int]) -> aiosmtplib.SMTP | None:
        lst = self._idle.get(key)
        while lst:
            client, handle = lst.pop()
            handle.cancel()
            if client.is_connected:
                self.reused += 1
                return client
        return None

    def give(self, key: tuple[str, int], client: aiosmtplib.SMTP) -> None:
        lst = self._idle.setdefault(key, [])
        if not self.config.reuse or len(lst) >= self.config.max_idle_per_dest or not client.is_connected:
            self._quit_later(client)
            return
        loop = asyncio.get_running_loop()
        handle = loop.call_later(self.config.idle_timeout, self._expire, key, client)
        lst.append((client, handle))

    def _expire(self, key: tuple[str, int], client: aiosmtplib.SMTP) -> None:
        lst = self._idle.get(key, [])
        for i, (c, _) in enumerate(lst):
            if c is client:
                del lst[i]
                break
        self._quit_later(client)

    def _quit_later(self, client: aiosmtplib.SMTP) -> None:
        """Say QUIT in the background; close the socket if that fails."""
        if not client.is_connected:
            return

        async def _quit() -> None:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()      # the peer is gone or confused: just drop it

        self._closing_seq += 1
        key = self._closing_seq
        task = asyncio.get_running_loop().create_task(_quit())
        self._closing[key] = task
        task.add_done_callback(lambda _t, key=key: self._closing.pop(key, None))

    def close_all(self) -> None:
        """Drop every idle connection at once (shutdown or crash)."""
        for key in sorted(self._idle):
            for client, handle in self._idle[key]:
                handle.cancel()
                client.close()
        self._idle.clear()


class _StaleConnection(Exception):
    """A cached connection turned out to be closed before MAIL got a reply."""


@dataclass(frozen=True)
class _Unreached:
    """A connection that failed or was refused at the greeting: the reply
    to record, and the server's own code (None: no reply at all)."""

    code: int
    text: str
    replied: int | None


OnAttempt = Callable[[Destination, list[str]], None]
#: (final outcomes, recipients for the next address, last reply) of one transaction.
Transaction = tuple[list[RcptOutcome], list[str], tuple[int, str]]


def apply_rule(action: Action, rcpts: list[str], code: int, text: str, dest: Destination
               ) -> tuple[list[RcptOutcome], list[str]]:
    """Do what a reply rule says to ``rcpts``: (final outcomes, recipients
    that move on to the next address)."""
    if action is Action.NEXT_MX:
        return [], list(rcpts)
    status = BOUNCED if action is Action.BOUNCE else DEFERRED
    return [RcptOutcome(r, status, code, text, dest.host, dest.ip) for r in rcpts], []


class Deliverer:
    """Runs SMTP client transactions for one host, to where its Router says."""

    def __init__(self, ctx: HostContext, config: DeliveryConfig | None = None) -> None:
        self.ctx = ctx
        self.config = config or DeliveryConfig()
        c = self.config
        self.router = Router(ctx, routes=c.routes, port=c.port, ports=c.ports, mx_names=c.mx_names,
                             max_addresses=c.max_addresses)
        self.cache = ConnectionCache(self.config)
        self._reused: set[int] = set()   # ids of clients just taken from the cache (membership only)
        # Clients in a transaction, in the order their transactions started:
        # close() ends them in that order.  Keyed by a counter, not id(), so
        # that order never depends on memory addresses.
        self._active: dict[int, aiosmtplib.SMTP] = {}
        self._active_seq = 0

    # -- the transaction -------------------------------------------------
    async def deliver(self, *, mail_from: str, rcpts: list[str], data: bytes, domain: str,
                      on_attempt: OnAttempt) -> list[RcptOutcome]:
        """Try to hand ``rcpts`` (all of ``domain``) to the next hop."""
        try:
            dests = await self.router.destinations(domain)
        except RouteFailure as f:
            status = BOUNCED if f.permanent else DEFERRED
            return [RcptOutcome(r, status, f.code, f.text) for r in rcpts]
        results: dict[str, RcptOutcome] = {}
        pending = list(rcpts)
        last = CONNECT_FAILED
        last_dest: Destination | None = None
        sessions = 0
        for dest in dests:
            if not pending or sessions >= self.config.max_sessions:
                break
            on_attempt(dest, pending)
            client = await self._connect(dest)
            if isinstance(client, _Unreached):
                last, last_dest = (client.code, client.text), dest
                done, pending = apply_rule(action_for(Stage.GREETING, client.replied), pending,
                                           client.code, client.text, dest)
            else:
                sessions += 1
                slot = self._track(client)
                try:
                    done, pending, last = await self._transaction(client, dest, mail_from, pending, data)
                except _StaleConnection:
                    self._active.pop(slot, None)
                    # A cached connection the server had closed meanwhile: that
                    # says nothing about the destination, so try a fresh one.
                    client = await self._connect(dest, cached=False)
                    if isinstance(client, _Unreached):
                        last, last_dest = (client.code, client.text), dest
                        done, pending = apply_rule(action_for(Stage.GREETING, client.replied),
                                                   pending, client.code, client.text, dest)
                        for o in done:
                            results[o.rcpt] = o
                        continue
                    slot = self._track(client)
                    done, pending, last = await self._transaction(client, dest, mail_from, pending, data)
                finally:
                    self._active.pop(slot, None)
                last_dest = dest
            for o in done:
                results[o.rcpt] = o
        for r in pending:
            results[r] = RcptOutcome(r, DEFERRED, last[0], last[1],
                                     last_dest.host if last_dest else "", last_dest.ip if last_dest else "")
        return [results[r] for r in rcpts]

    def _track(self, client: aiosmtplib.SMTP) -> int:
        """Register ``client`` as in a transaction; returns its slot."""
        self._active_seq += 1
        self._active[self._active_seq] = client
        return self._active_seq

    async def _connect(self, dest: Destination, cached: bool = True) -> aiosmtplib.SMTP | _Unreached:
        """A connected client (cached or new), or why there is none."""
        key = (dest.ip, dest.port)
        old = self.cache.take(key) if cached else None
        if old is not None:
            self._reused.add(id(old))
            return old
        client = aiosmtplib.SMTP(hostname=dest.ip, port=dest.port,
                                 local_hostname=self.ctx.hostname,
                                 timeout=self.config.command_timeout)
        outcome, greeting, failure = "connected", "", None
        try:
            resp = await client.connect(timeout=self.config.connect_timeout)
            greeting = f"{resp.code} {resp.message}"
        except aiosmtplib.SMTPConnectResponseError as exc:
            greeting = f"{exc.code} {exc.message}"
            failure = _Unreached(exc.code, exc.message, exc.code)
        except aiosmtplib.SMTPServerDisconnected:
            outcome, failure = "reset", _Unreached(*LOST_CONNECTION, None)
        except (aiosmtplib.SMTPException, OSError) as exc:
            outcome = connect_outcome(exc)
            failure = _Unreached(*(CONNECT_TIMEOUT if outcome == "timeout" else CONNECT_FAILED), None)
        self.ctx.sink.emit(ev.ConnectAttempt(
            t=self.ctx.now(), host=self.ctx.hostname, dest_host=dest.host, dest_ip=dest.ip,
            port=dest.port, outcome=outcome, purpose="deliver", preference=dest.preference,
            greeting=greeting))
        if failure is not None:
            client.close()
            return failure
        return client

    async def _transaction(self, client: aiosmtplib.SMTP, dest: Destination, mail_from: str,
                           rcpts: list[str], data: bytes) -> Transaction:
        """One MAIL/RCPT/DATA on ``client``: (final outcomes, rcpts to try at
        the next destination, last reply), each reply handled as
        :mod:`mta.delivery.reply_rules` says.  Returns the client to the
        cache when the session is still usable."""
        key = (dest.ip, dest.port)
        done: list[RcptOutcome] = []
        moved: list[str] = []
        reused = id(client) in self._reused
        self._reused.discard(id(client))
        stage = Stage.MAIL
        try:
            try:
                await client.mail(mail_from)     # EHLO first, on a new connection
            except aiosmtplib.SMTPServerDisconnected:
                if reused:
                    client.close()
                    raise _StaleConnection() from None
                raise
            except aiosmtplib.SMTPSenderRefused as exc:
                await self._reset(client, key)
                done, moved = apply_rule(action_for(Stage.MAIL, exc.code), rcpts, exc.code,
                                         exc.message, dest)
                return done, moved, (exc.code, exc.message)
            stage = Stage.RCPT
            accepted: list[str] = []
            refusal = CONNECT_FAILED
            for r in rcpts:
                try:
                    await client.rcpt(r)
                    accepted.append(r)
                except aiosmtplib.SMTPRecipientRefused as exc:
                    refusal = (exc.code, exc.message)
                    d, m = apply_rule(action_for(Stage.RCPT, exc.code), [r], exc.code, exc.message, dest)
                    done += d
                    moved += m
            if not accepted:
                await self._reset(client, key)
                return done, moved, refusal
            stage = Stage.DATA
            try:
                resp = await client.data(data)
            except aiosmtplib.SMTPDataError as exc:
                await self._reset(client, key)
                d, m = apply_rule(action_for(Stage.DATA, exc.code), accepted, exc.code, exc.message, dest)
                return done + d, moved + m, (exc.code, exc.message)
            done.extend(RcptOutcome(r, RELAYED, resp.code, resp.message, dest.host, dest.ip)
                        for r in accepted)
            self.cache.give(key, client)
            return done, moved, (resp.code, resp.message)
        except (aiosmtplib.SMTPException, OSError) as exc:
            # Timed out, lost, or a reply refusing the session (EHLO): the
            # recipients without a final answer are handled as the rule says.
            client.close()
            code, text = CONNECT_TIMEOUT if isinstance(exc, aiosmtplib.SMTPTimeoutError) else LOST_CONNECTION
            replied = None
            if isinstance(exc, aiosmtplib.SMTPResponseException) and 400 <= exc.code < 600:
                code, text = exc.code, exc.message
                if isinstance(exc, aiosmtplib.SMTPHeloError):
                    stage, replied = Stage.EHLO, exc.code
            answered = {o.rcpt for o in done}
            d, m = apply_rule(action_for(stage, replied), [r for r in rcpts if r not in answered],
                              code, text, dest)
            return done + d, m, (code, text)

    async def _reset(self, client: aiosmtplib.SMTP, key: tuple[str, int]) -> None:
        """RSET after an aborted transaction, then cache the connection."""
        try:
            await client.rset()
        except Exception:
            client.close()
            return
        self.cache.give(key, client)

    def close(self) -> None:
        """Drop every connection, idle or in a transaction (shutdown, crash)."""
        self.cache.close_all()
        for key in list(self._active):      # insertion order: oldest transaction first
            self._active.pop(key).close()
