"""One server-side SMTP connection: :class:`ReceivingSMTP`.

It is an aiosmtpd ``SMTP`` (through :class:`~mta.smtp.aiosmtpd_fence.FencedSMTP`,
the one module that touches aiosmtpd's private parts) and it changes, over
aiosmtpd 1.4.6:

* the command loop (:meth:`ReceivingSMTP.serve`): per-instance command size
  limits, Postfix's hard error limit, NUL bytes and header lines sent as
  commands answered instead of crashing, refusal at connect (554 greeting,
  then 503 to all but QUIT: RFC 5321 §3.1), a decision at connect by the
  chain; the rules themselves are :mod:`mta.smtp.rules`;
* MAIL/RCPT/DATA: parsed with :mod:`mta.smtp.transaction`, decided by the
  policy chain, the outcome applied here (the chain never calls back);
* DATA reading (:class:`~mta.smtp.data.DataReader`) that stops keeping
  bytes past the size limit, still reads to the final dot, and answers
  552 5.3.4;
* AUTH inside a mail transaction gets 503 5.5.1 (aiosmtpd answers 235);
  AUTH and STARTTLS on the record and hostile AUTH input answered:
  :mod:`mta.smtp.secure`;
* the idle timeout answers "421 4.4.2" before closing (Postfix);
* every reply given is an :class:`~mta.events.SmtpReply` event.
"""
from __future__ import annotations

import asyncio
from typing import Any, Protocol

from mta.context import HostContext
from mta.events import (ComponentError, ConnectionClosed, ConnectionOpened,
                        EtrnRequest, PolicyDecision, SmtpReply)
from mta.interfaces import MessageSink, ReleaseTarget
from mta.ondemand.etrn import etrn_reply
from mta.policy import Facts, Outcome, Phase, PolicyChain, prefetch
from mta.smtp import replies as R
from mta.smtp.aiosmtpd_fence import isolate_command_limits
from mta.smtp.config import ServerConfig
from mta.smtp.data import DataReader
from mta.smtp.secure import SecureCommands
from mta.smtp.rules import (BEFORE_STARTTLS, COMMAND_ORDER, FORBIDDEN_COMMANDS, SIZE_PARAMETER_OCTETS, ErrorCount,
                            SessionState, ehlo_keywords, lockdown_refusal, multiline,
                            order_refusal, screen_line, split_reply)
from mta.smtp.transaction import (data_refusal, mail_reply, parse_mail, parse_rcpt,
                                  rcpt_verdict, received_header, trace_block, with_protocol)


class Listener(Protocol):
    """What a connection uses of its listening server
    (:class:`mta.smtp.server.SmtpServer`, which builds the connections)."""

    ctx: HostContext
    chain: PolicyChain
    sink: MessageSink | None
    config: ServerConfig
    release: ReleaseTarget | None
    handler: object                       # the aiosmtpd handler
    connections: list[Any]                # the live connections
    data_peak: int

    @property
    def banner(self) -> str: ...

    def emit(self, event_cls: type, **kw: Any) -> None: ...


class ReceivingSMTP(SecureCommands):
    """One server-side SMTP connection (see module docstring)."""

    def __init__(self, server: Listener, loop: asyncio.AbstractEventLoop) -> None:
        cfg = server.config
        # The reader's line limit must fit the longest command we accept.
        isolate_command_limits(self, cfg.command_size_limit, max(
            cfg.line_length_limit, cfg.command_size_limit + SIZE_PARAMETER_OCTETS + 2))
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
        self._size_offered = bool(server.chain.max_message_size)   # EHLO says SIZE
        super().__init__(
            server.handler, hostname=server.ctx.hostname, ident="ESMTP",
            data_size_limit=server.chain.max_message_size, timeout=cfg.idle_timeout,
            auth_require_tls=cfg.auth_require_tls, authenticator=cfg.authenticator(),
            tls_context=cfg.tls_context, require_starttls=cfg.require_starttls, loop=loop)

    # -- connection life -------------------------------------------------
    def on_transaction_reset(self) -> None:
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

    def on_idle_timeout(self) -> None:
        # Postfix says goodbye before hanging up; aiosmtpd just closes.
        if self.transport is not None and not self.transport.is_closing():
            status = R.R_TIMEOUT.format(host=self.hostname)
            self._record(status, "TIMEOUT", "")
            self.transport.write(status.encode("ascii") + b"\r\n")
        self._close_reason = "timeout"

    # -- replies and decisions ----------------------------------------------
    def _record(self, status: str, command: str, argument: str) -> None:
        code, text = split_reply(status)
        self._last_code = code
        env = self.envelope
        self.server.emit(
            SmtpReply, conn=self.conn, client_ip=self.facts.client_ip, command=command,
            argument=argument, code=code, text=text, helo=self.facts.helo,
            mail_from=env.mail_from if env is not None else None,
            # Only the reply to the message carries its recipients: on every
            # reply, n RCPTs would log n*n/2 addresses (1 GB for 10,000).
            rcpts=tuple(env.rcpt_tos) if env is not None and command == "DATA_END" else (),
            stage=self._stage)

    async def push(self, status: Any) -> None:
        if isinstance(status, bytes):
            status = status.decode("ascii", "replace")
        self._record(status, self._cur_cmd, self._cur_arg)
        await super().push(status)

    async def _close_with(self, status: str, reason: str) -> None:
        self._close_reason = reason
        await self.push(status)
        self.transport.close()

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

    def _state(self) -> SessionState:
        env = self.envelope
        return SessionState(bool(self.session.host_name), env.mail_from is not None,
                            bool(env.rcpt_tos), self.server.config.users is not None)

    # -- the command loop -------------------------------------------------
    async def _greet(self) -> bool:
        """The greeting, after the chain's connect decision; False if the
        connection is closed at once."""
        outcome = await self.decide(Phase.CONNECT)
        d = outcome.decision
        if outcome.refused and d.code // 100 == 4:
            # RFC 5321 §3.1/§4.2.3: the only transient greeting is 421, and
            # the server closes after it (a DNSBL that failed closed...).
            await self._close_with(f"421 {d.enhanced} {self.hostname} {d.text}".replace("  ", " "),
                                   "deferred-at-connect")
            return False
        if outcome.refused:
            self._access_denied = True
            await self.push(d.reply)
        else:
            self._stage = ""
            await self.push(f"220 {self.server.banner}")
        return True

    async def serve(self) -> None:
        """Greet, then read and answer commands until the connection ends."""
        if not await self._greet():
            return
        errors = ErrorCount(self.server.config.hard_error_limit)
        calls: dict[str, int] = dict(self.server.config.command_call_limits or {})
        while self.transport is not None:
            try:
                if errors.exhausted:
                    self._cur_cmd, self._cur_arg, self._stage = "", "", ""
                    await self._close_with(R.R_TOO_MANY_ERRORS.format(host=self.hostname),
                                           "too-many-errors")
                    break
                line = await self._read_line()
                # RFC 5321 §4.5.3.2.7: the wait for the next command starts
                # at every line answered, bad ones too (aiosmtpd: valid only).
                self.restart_idle_timer()
                self._stage = ""
                self._last_code = 0
                self._forgive = False
                if line is None:
                    self._cur_cmd, self._cur_arg = "", ""
                    await self.push(R.R_LINE_TOO_LONG)
                    errors = errors.after(500)
                    continue
                await self._dispatch(line.rstrip(b"\r\n"), calls)
                errors = errors.after(self._last_code, self._forgive)
            except asyncio.CancelledError:
                self.writer.close()
                raise
            except ConnectionResetError:
                # The peer went away (EOF mid-command or mid-DATA): not our bug.
                self._close_reason = self._close_reason or "reset"
                self.writer.close()
                return
            except Exception as exc:  # our bug: record it, keep serving
                self.server.emit(ComponentError, where=f"smtp {self._cur_cmd}",
                                 error=f"{type(exc).__name__}: {exc}")
                await self.push(R.R_INTERNAL_ERROR)

    async def _dispatch(self, line: bytes, calls: dict[str, int]) -> None:
        self._cur_cmd, self._cur_arg, command = screen_line(
            line, base_limit=self.command_size_limit, extended=bool(self.session.extended_smtp),
            size_offered=self._size_offered)
        if isinstance(command, str):
            return await self.push(command)
        verb = command.verb
        if verb in FORBIDDEN_COMMANDS:
            return await self._close_with(R.R_HEADER_AS_COMMAND, "non-smtp-command")
        refusal = lockdown_refusal(verb, self.facts.client_ip) if self._access_denied else None
        if refusal is not None:
            return await self.push(refusal)
        if self.server.config.require_starttls and not self.tls_active() \
                and verb not in BEFORE_STARTTLS:
            return await self.push(R.R_MUST_STARTTLS)
        if verb in calls:
            if calls[verb] < 1:
                return await self._close_with(R.R_CALL_LIMIT.format(verb=verb), "call-limit")
            calls[verb] -= 1
        method = self.command_method(verb)
        if method is None:
            return await self.push(R.R_UNKNOWN)
        if verb in COMMAND_ORDER:
            refusal = order_refusal(verb, self._state())
            if refusal is not None:
                return await self.push(refusal)
        await method(command.arg)

    # -- commands -----------------------------------------------------------
    async def _helo(self, hostname: str | None, extended: bool) -> None:
        verb = "EHLO" if extended else "HELO"
        if not hostname:
            return await self.push(R.R_HELO_SYNTAX.format(verb=verb))
        self.reset_transaction()
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
        users = self.server.config.users
        await self.push(multiline(250, ehlo_keywords(
            self.hostname, policy_keywords=self.server.chain.ehlo_keywords(),
            etrn=self.server.config.etrn.enabled,
            auth_mechanisms=self.offered_auth() if users is not None else None,
            starttls=self.server.config.tls_context is not None and not self.tls_active())))

    async def smtp_HELO(self, hostname: str) -> None:
        await self._helo(hostname, extended=False)

    async def smtp_EHLO(self, hostname: str) -> None:
        await self._helo(hostname, extended=True)

    async def smtp_MAIL(self, arg: str | None) -> None:
        parsed = parse_mail(arg, bool(self.session.extended_smtp))
        if isinstance(parsed, str):
            return await self.push(parsed)
        self.facts.declared_size = parsed.declared_size
        self.facts.mail_from = parsed.sender
        outcome = await self.decide(Phase.MAIL, parsed.sender)
        if outcome.refused:
            self.facts.mail_from = None
            self.facts.declared_size = None
        else:
            self.envelope.mail_from = parsed.sender.mailbox
            self.envelope.mail_options.extend(parsed.options)
        await self.push(mail_reply(outcome))

    async def smtp_RCPT(self, arg: str | None) -> None:
        parsed = parse_rcpt(arg)
        if isinstance(parsed, str):
            return await self.push(parsed)
        verdict = rcpt_verdict(await self.decide(Phase.RCPT, parsed), self.overshoot)
        self.overshoot = verdict.overshoot
        self._forgive = verdict.forgiven
        if verdict.accepted:
            self.envelope.rcpt_tos.append(parsed.mailbox)
            self.facts.rcpts.append(parsed.mailbox)
            if verdict.keep:
                self.facts.kept.append(parsed.mailbox)
        await self.push(verdict.reply)

    async def smtp_DATA(self, arg: str | None) -> None:
        if arg:
            return await self.push(R.R_DATA_SYNTAX)
        await self.push(R.R_START_DATA)
        reader = DataReader(self.reader, self.server.chain.max_message_size,
                            on_progress=self.restart_idle_timer)
        message = await reader.read()
        self.data_peak = max(self.data_peak, reader.peak)
        self.server.data_peak = max(self.server.data_peak, reader.peak)
        self._cur_cmd, self._cur_arg = "DATA_END", ""
        self.facts.data_size = reader.size
        self.facts.data_overflow = reader.overflow
        outcome = await self.decide(Phase.DATA, message if message is not None else b"")
        status = data_refusal(outcome, reader.overflow, message is not None)
        if status is None:
            status = await self._queue(message or b"")
        try:
            await self.push(status)   # logged with the envelope it answers
        finally:
            self.end_transaction()

    async def _queue(self, message: bytes) -> str:
        """Hand an accepted message to the server's sink; the DATA reply."""
        sink, facts = self.server.sink, self.facts
        if sink is None:
            return R.R_NO_QUEUE
        received = None
        if self.server.config.add_received:
            received = received_header(
                helo=facts.helo, client_ip=facts.client_ip, by=self.server.ctx.hostname,
                protocol=with_protocol(facts.esmtp, facts.authenticated), conn=self.conn,
                when=self.server.ctx.now())
        try:
            qid = await sink.accept(
                conn=self.conn, client_ip=facts.client_ip, helo=facts.helo,
                mail_from=self.envelope.mail_from or "", rcpts=list(facts.kept),
                acknowledged=list(facts.rcpts), data=trace_block(received, facts.headers) + message)
        except Exception as exc:
            self.server.emit(ComponentError, where="smtp DATA sink",
                             error=f"{type(exc).__name__}: {exc}")
            return R.R_QUEUE_ERROR
        return R.R_QUEUED.format(qid=qid)

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
