"""One server-side SMTP connection: the aiosmtpd ``SMTP`` subclass.

What :class:`ReceivingSMTP` changes in aiosmtpd 1.4.6 (pinned; see
tests/test_server_pins.py):

* command reading (``_handle_client``): per-instance command size limits
  (aiosmtpd keeps them on the class), a Postfix-like hard error limit, NUL
  bytes and header lines sent as commands answered instead of crashing,
  refusal at connect time (554 greeting, then 503 to all but QUIT: RFC 5321
  §3.1), and a decision at connect by the chain;
* MAIL/RCPT parsing with :mod:`mta.addresses` (so relay probes reach policy);
* DATA reading (:class:`~mta.smtp.data.DataReader`) that stops keeping
  bytes past the size limit, still reads to the final dot, and answers
  552 5.3.4;
* AUTH inside a mail transaction gets 503 5.5.1 (aiosmtpd answers 235);
* the idle timeout answers "421 4.4.2" before closing (Postfix);
* every reply given is an :class:`~mta.events.SmtpReply` event;
* construction skips aiosmtpd's per-connection introspection
  (:class:`~mta.smtp.init_cache.FastInitSMTP`).
"""
from __future__ import annotations

import asyncio
import collections
from typing import TYPE_CHECKING, Any

from aiosmtpd.smtp import AuthResult, LoginPassword

from mta.addresses import AddressError, parse_esmtp_params, parse_path, parse_size_param
from mta.smtp.data import DataReader
from mta.ondemand.etrn import etrn_reply
from mta.events import (ComponentError, ConnectionClosed, ConnectionOpened,
                        EtrnRequest, PolicyDecision, SmtpReply)
from mta.policy import Facts, Outcome, Phase, prefetch
from mta.smtp.replies import (R_AUTH_DISABLED, R_AUTH_IN_TRANSACTION, R_BAD_SYNTAX, R_DATA_SYNTAX,
                         R_HEADER_AS_COMMAND, R_LINE_TOO_LONG, R_MAIL_SYNTAX, R_NEED_MAIL,
                         R_NEED_RCPT, R_NESTED_MAIL, R_NOT_ASCII, R_NUL, R_RCPT_SYNTAX,
                         R_SEND_HELO, R_START_DATA, R_UNKNOWN)
from mta.smtp.init_cache import FastInitSMTP

if TYPE_CHECKING:   # only for annotations: mta.smtp.server imports this module
    from mta.smtp.server import SmtpServer

# Postfix refuses these "commands": a mail header or an HTTP proxy request
# pasted into an SMTP session (smtpd.c, SMTPD_CMD_FLAG_FORBIDDEN).
FORBIDDEN_COMMANDS = ("RECEIVED:", "REPLY-TO:", "MESSAGE-ID:", "SUBJECT:", "FROM:",
                      "CONNECT", "USER-AGENT:", "GET", "POST")


def _split_reply(status: str) -> tuple[int, str]:
    lines = status.split("\r\n")
    try:
        code = int(lines[0][:3])
    except ValueError:  # pragma: no cover - our own replies always have codes
        code = 500
    return code, "\n".join(line[4:] for line in lines)


class ReceivingSMTP(FastInitSMTP):
    """One server-side SMTP connection (see module docstring)."""

    def __init__(self, server: SmtpServer, loop: asyncio.AbstractEventLoop) -> None:
        cfg = server.config
        # Per-instance limits, set before SMTP.__init__ reads and clears them:
        # aiosmtpd keeps command_size_limits on the class (shared by every
        # server in the process) and grows MAIL's limit on every EHLO.
        self.command_size_limit = cfg.command_size_limit
        self.command_size_limits = collections.defaultdict(lambda: cfg.command_size_limit)
        # The reader's line limit must fit the longest command we accept.
        self.line_length_limit = max(cfg.line_length_limit, cfg.command_size_limit + 26 + 2)
        self.server = server
        self.facts = Facts(client_ip="")
        self.conn = ""
        self._cur_cmd = "CONNECT"
        self._cur_arg = ""
        self._stage = ""
        self._last_code = 0
        self._close_reason = ""
        self._access_denied = False
        self._forgive = False      # this reply does not count toward the error limit
        self.overshoot = 0         # RCPTs refused for the recipient limit so far
        self._closed_logged = False
        self.data_peak = 0      # most DATA bytes held at once (tests read it)
        self._idle_deadline = 0.0  # loop time the connection times out (see _reset_timeout)
        self._idle_armed = 0.0     # loop time the armed timer fires
        super().__init__(
            server.handler, hostname=server.ctx.hostname, ident="ESMTP",
            data_size_limit=server.chain.max_message_size, timeout=cfg.idle_timeout,
            auth_require_tls=cfg.auth_require_tls,
            authenticator=_authenticator(cfg.users) if cfg.users is not None else None,
            loop=loop)

    # -- connection life -------------------------------------------------
    def _set_post_data_state(self) -> None:
        super()._set_post_data_state()
        self.facts.new_transaction()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None
        if first:
            peer = transport.get_extra_info("peername")
            sock = transport.get_extra_info("sockname")
            self.facts.client_ip = peer[0] if isinstance(peer, tuple) else str(peer or "")
            self.facts.client_port = peer[1] if isinstance(peer, tuple) else 0
            self.facts.server_ip = sock[0] if isinstance(sock, tuple) else ""
            port = sock[1] if isinstance(sock, tuple) else 0
            self.conn = self.server.ctx.next_id("c")
            self.server.connections.append(self)
            self.server.emit(ConnectionOpened, conn=self.conn, client_ip=self.facts.client_ip,
                             port=port, service="smtp")
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if not self._closed_logged:
            self._closed_logged = True
            reason = self._close_reason or ("reset" if error else "closed")
            self.server.emit(ConnectionClosed, conn=self.conn, reason=reason)
            if self in self.server.connections:
                self.server.connections.remove(self)
        super().connection_lost(error)

    def eof_received(self) -> bool | None:
        self._close_reason = self._close_reason or "eof"
        return super().eof_received()

    def _reset_timeout(self, duration: float | None = None) -> None:
        """Move the idle deadline ``duration`` (default: the idle timeout)
        from now.

        aiosmtpd cancels its timer and schedules a new one here, and this
        runs for every command and every DATA line (RFC 5321 §4.5.3.2: the
        timeout is per block).  Here one timer stays armed and only the
        deadline moves: when the timer fires before the deadline it re-arms
        for the rest, so the connection still times out exactly
        ``duration`` after the last activity."""
        loop = self.loop
        deadline = loop.time() + (duration or self._timeout_duration)
        self._idle_deadline = deadline
        handle = self._timeout_handle
        if handle is None or handle.cancelled() or deadline < self._idle_armed:
            if handle is not None:
                handle.cancel()
            self._idle_armed = deadline
            self._timeout_handle = loop.call_at(deadline, self._idle_check)

    def _idle_check(self) -> None:
        """The idle timer fired: time out, or re-arm if activity moved the deadline."""
        deadline = self._idle_deadline
        if self.loop.time() < deadline:
            self._idle_armed = deadline
            self._timeout_handle = self.loop.call_at(deadline, self._idle_check)
            return
        self._timeout_cb()

    def _timeout_cb(self) -> None:
        # Postfix says goodbye before hanging up; aiosmtpd just closes.
        if self.transport is not None and not self.transport.is_closing():
            status = f"421 4.4.2 {self.hostname} Error: timeout exceeded"
            self._record(status, "TIMEOUT", "")
            self.transport.write(status.encode("ascii") + b"\r\n")
        self._close_reason = "timeout"
        super()._timeout_cb()

    # -- replies ----------------------------------------------------------
    def _record(self, status: str, command: str, argument: str) -> None:
        code, text = _split_reply(status)
        self._last_code = code
        env = self.envelope
        self.server.emit(
            SmtpReply, conn=self.conn, client_ip=self.facts.client_ip, command=command,
            argument=argument, code=code, text=text, helo=self.facts.helo,
            mail_from=env.mail_from if env is not None else None,
            rcpts=tuple(env.rcpt_tos) if env is not None else (), stage=self._stage)

    async def push(self, status: Any) -> None:
        if isinstance(status, bytes):
            status = status.decode("ascii", "replace")
        self._record(status, self._cur_cmd, self._cur_arg)
        await super().push(status)

    async def decide(self, phase: Phase, arg: object = None) -> Outcome:
        """Fetch the DNS answers the chain wants, then ask it (pure)."""
        chain = self.server.chain
        wanted = chain.lookups(phase, self.facts)
        if wanted:
            await prefetch(self.server.ctx.resolver, wanted, self.facts)
        outcome = chain.decide(phase, self.facts, arg)
        if not outcome.refused:
            # Headers of every phase go on the message (greylist, spam...).
            self.facts.headers.extend(outcome.headers)
        for stage, note in outcome.notes:
            self.server.emit(PolicyDecision, conn=self.conn, stage=stage,
                             decision=note.decision, detail=note.detail,
                             client_ip=self.facts.client_ip)
        self._stage = outcome.stage
        return outcome

    # -- the command loop -------------------------------------------------
    async def _read_line(self) -> bytes | None:
        """One command line, or None if it was too long for the reader
        (the rest of the line has then been read and thrown away)."""
        try:
            return await self._reader.readuntil()
        except asyncio.IncompleteReadError:
            raise ConnectionResetError("connection closed") from None
        except asyncio.LimitOverrunError as exc:
            await self._reader.read(exc.consumed)
            while True:
                try:
                    await self._reader.readuntil()
                    return None
                except asyncio.LimitOverrunError as e:
                    await self._reader.read(e.consumed)

    async def _handle_client(self) -> None:
        cfg = self.server.config
        outcome = await self.decide(Phase.CONNECT)
        d = outcome.decision
        if outcome.refused and d.code // 100 == 4:
            # RFC 5321 §3.1/§4.2.3: the only transient greeting is 421, and
            # the server closes after it (a DNSBL that failed closed...).
            self._close_reason = "deferred-at-connect"
            await self.push(f"421 {d.enhanced} {self.hostname} {d.text}".replace("  ", " "))
            self.transport.close()
            return
        if outcome.refused:
            self._access_denied = True
            await self.push(d.reply)
        else:
            self._stage = ""
            await self.push(f"220 {self.server.banner}")
        errors = 0
        calls: dict[str, int] = dict(cfg.command_call_limits or {})
        while self.transport is not None:
            try:
                if errors >= cfg.hard_error_limit:
                    self._cur_cmd, self._cur_arg, self._stage = "", "", ""
                    self._close_reason = "too-many-errors"
                    await self.push(f"421 4.7.0 {self.hostname} Error: too many errors")
                    self.transport.close()
                    break
                line = await self._read_line()
                self._stage = ""
                self._last_code = 0
                self._forgive = False
                if line is None:
                    self._cur_cmd, self._cur_arg = "", ""
                    await self.push(R_LINE_TOO_LONG)
                    errors += 1
                    continue
                line = line.rstrip(b"\r\n")
                await self._dispatch(line, calls)
                if self._last_code >= 400 and not self._forgive:
                    errors += 1
            except asyncio.CancelledError:
                self._writer.close()
                raise
            except ConnectionResetError:
                # The peer went away (EOF mid-command or mid-DATA): not our bug.
                self._close_reason = self._close_reason or "reset"
                self._writer.close()
                return
            except Exception as exc:  # our bug: record it, keep serving
                self.server.emit(ComponentError, where=f"smtp {self._cur_cmd}",
                                 error=f"{type(exc).__name__}: {exc}")
                await self.push("451 4.3.0 Error: internal error")

    async def _dispatch(self, line: bytes, calls: dict[str, int]) -> None:
        word, _, rest = line.partition(b" ")
        self._cur_cmd = word[:16].decode("ascii", "replace").upper()
        self._cur_arg = _shown_argument(self._cur_cmd, rest)
        if not line.strip():
            return await self.push(R_BAD_SYNTAX)
        if b"\x00" in line:
            return await self.push(R_NUL)
        try:
            command = word.decode("ascii").upper()
            arg = rest.strip().decode("ascii") or None
        except UnicodeDecodeError:
            return await self.push(R_NOT_ASCII)
        limit = self.command_size_limits[command] if self.session.extended_smtp \
            else self.command_size_limit
        if len(line) + 2 > limit:
            return await self.push(R_LINE_TOO_LONG)
        if command in FORBIDDEN_COMMANDS:
            self._close_reason = "non-smtp-command"
            await self.push(R_HEADER_AS_COMMAND)
            self.transport.close()
            return
        if self._access_denied and command != "QUIT":
            return await self.push(f"503 5.7.1 Error: access denied for [{self.facts.client_ip}]")
        if command in calls:
            if calls[command] < 1:
                self._close_reason = "call-limit"
                await self.push(f"421 4.7.0 {command} sent too many times")
                self.transport.close()
                return
            calls[command] -= 1
        method = self._smtp_methods.get(command)
        if method is None:
            return await self.push(R_UNKNOWN)
        self._reset_timeout()
        await method(arg)

    # -- commands -----------------------------------------------------------
    async def _helo(self, hostname: str | None, extended: bool) -> None:
        verb = "EHLO" if extended else "HELO"
        if not hostname:
            return await self.push(f"501 5.5.4 Syntax: {verb} hostname")
        self._set_rset_state()
        self.session.host_name = None
        self.facts.helo = ""
        outcome = await self.decide(Phase.HELO, hostname)
        if outcome.refused:
            return await self.push(outcome.decision.reply)
        self.session.host_name = hostname
        self.session.extended_smtp = extended
        self.facts.helo = hostname
        self.facts.esmtp = extended
        if not extended:
            return await self.push(f"250 {self.hostname}")
        size = self.server.chain.max_message_size
        self.command_size_limits.clear()
        if size:
            self.command_size_limits["MAIL"] = self.command_size_limit + 26  # " SIZE=n"
        lines = [self.hostname, "PIPELINING"]
        lines += self.server.chain.ehlo_keywords()
        if self.server.config.etrn.enabled:
            lines.append("ETRN")
        lines += ["ENHANCEDSTATUSCODES", "8BITMIME"]
        if self.server.config.users is not None and (
                not self._auth_require_tls or self._tls_protocol):
            lines.append("AUTH " + " ".join(sorted(self._auth_methods)))
        lines.append("HELP")
        await self.push("\r\n".join(
            f"250{'-' if i < len(lines) - 1 else ' '}{x}" for i, x in enumerate(lines)))

    async def smtp_HELO(self, hostname: str) -> None:
        await self._helo(hostname, extended=False)

    async def smtp_EHLO(self, hostname: str) -> None:
        await self._helo(hostname, extended=True)

    async def smtp_MAIL(self, arg: str | None) -> None:
        if not self.session.host_name:
            return await self.push(R_SEND_HELO)
        if self.envelope.mail_from is not None:
            return await self.push(R_NESTED_MAIL)
        if not arg or arg[:5].upper() != "FROM:" or not arg[5:].strip():
            return await self.push(R_MAIL_SYNTAX)
        try:
            address, ptext = parse_path(arg[5:])
            params = parse_esmtp_params(ptext)
            if params and not self.session.extended_smtp:
                return await self.push(R_MAIL_SYNTAX)
            size = params.pop("SIZE", None)
            self.facts.declared_size = parse_size_param(size) if size is not None else None
        except AddressError as exc:
            enhanced = "5.1.7" if exc.enhanced == "5.1.3" else exc.enhanced
            return await self.push(f"{exc.code} {enhanced} {exc.text}")
        body = params.pop("BODY", "7BIT")
        if body not in ("7BIT", "8BITMIME"):
            return await self.push("501 5.5.4 Error: BODY can only be one of 7BIT, 8BITMIME")
        if params:
            return await self.push(f"555 5.5.4 Unsupported option: {sorted(params)[0]}")
        status = await self._call_handler_hook("MAIL", address, ptext.split())
        await self.push(status)

    async def smtp_RCPT(self, arg: str | None) -> None:
        if not self.session.host_name:
            return await self.push(R_SEND_HELO)
        if self.envelope.mail_from is None:
            return await self.push(R_NEED_MAIL)
        if not arg or arg[:3].upper() != "TO:" or not arg[3:].strip():
            return await self.push(R_RCPT_SYNTAX)
        try:
            address, ptext = parse_path(arg[3:])
            params = parse_esmtp_params(ptext)
        except AddressError as exc:
            return await self.push(f"{exc.code} {exc.enhanced} {exc.text}")
        if address.is_null:
            return await self.push("501 5.1.3 Bad recipient address syntax")
        if params:
            return await self.push(f"555 5.5.4 Unsupported option: {sorted(params)[0]}")
        status = await self._call_handler_hook("RCPT", address, [])
        await self.push(status)

    async def smtp_DATA(self, arg: str | None) -> None:
        if not self.session.host_name:
            return await self.push(R_SEND_HELO)
        if self.envelope.mail_from is None:
            return await self.push(R_NEED_MAIL)
        if not self.envelope.rcpt_tos:
            return await self.push(R_NEED_RCPT)
        if arg:
            return await self.push(R_DATA_SYNTAX)
        await self.push(R_START_DATA)
        reader = DataReader(self._reader, self.server.chain.max_message_size,
                            on_progress=self._reset_timeout)
        message = await reader.read()
        self.data_peak = max(self.data_peak, reader.peak)
        self.server.data_peak = max(self.server.data_peak, reader.peak)
        self._cur_cmd, self._cur_arg = "DATA_END", ""
        self.facts.data_size = reader.size
        self.facts.data_overflow = reader.overflow
        status = await self._call_handler_hook("DATA", message)
        try:
            await self.push(status)   # logged with the envelope it answers
        finally:
            self._set_post_data_state()

    async def smtp_AUTH(self, arg: str) -> None:
        if self.server.config.users is None:
            return await self.push(R_AUTH_DISABLED)
        if self.envelope.mail_from is not None:
            # RFC 4954 §4: AUTH is not permitted during a mail transaction.
            return await self.push(R_AUTH_IN_TRANSACTION)
        await super().smtp_AUTH(arg)
        if self.session.authenticated:
            self.facts.authenticated = True
            data = self.session.auth_data
            login = getattr(data, "login", b"")
            self.facts.auth_user = login.decode("utf-8", "replace") if isinstance(login, bytes) else str(login)

    async def smtp_ETRN(self, arg: str | None) -> None:
        """ETRN [@|#]node (RFC 1985): start delivery of held mail."""
        result = etrn_reply(arg, policy=self.server.config.etrn,
                            in_transaction=self.envelope.mail_from is not None,
                            client_ip=self.facts.client_ip, target=self.server.release)
        self._stage = "etrn"
        if result.error:     # the release failed: a 458 must not hide the bug
            self.server.emit(ComponentError, where="smtp ETRN release", error=result.error)
        await self.push(result.reply)
        self.server.emit(EtrnRequest, conn=self.conn, client_ip=self.facts.client_ip,
                         argument=arg or "", code=result.code, text=result.text)

    async def smtp_QUIT(self, arg: str) -> None:
        self._close_reason = "quit"
        await super().smtp_QUIT(None)   # QUIT with junk still quits (Postfix)


def _shown_argument(command: str, rest: bytes) -> str:
    """The argument as logged: AUTH credentials hidden, length capped."""
    text = rest.strip()[:200].decode("ascii", "replace")
    if command == "AUTH":
        return text.split(" ", 1)[0]
    return text


def _authenticator(users: dict[str, str]):
    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if isinstance(data, LoginPassword):
            user = data.login.decode("utf-8", "replace")
            if users.get(user) == data.password.decode("utf-8", "replace"):
                return AuthResult(success=True, auth_data=data)
        return AuthResult(success=False, handled=False)
    return check
