"""SMTP AUTH and STARTTLS of the receiving server, over aiosmtpd's.

:class:`SecureCommands` sits between :class:`~mta.smtp.aiosmtpd_fence.FencedSMTP`
and :class:`~mta.smtp.session.ReceivingSMTP` and changes, over aiosmtpd 1.4.6:

* every AUTH is on the record: a success is a ``PolicyDecision`` (stage
  ``smtp-auth``, ``pass``, ``mechanism=... user=...``, as Postfix logs
  ``sasl_method`` and ``sasl_username``); anything else (bad base64, empty
  or cancelled answers, bad credentials, a replay after success) is one
  with ``fail`` and the reply code.  The reply itself is aiosmtpd's, or
  RFC 4954's ``500 5.5.6`` for an over-long answer to a 334 challenge,
  which aiosmtpd's reader would raise on (:meth:`SecureCommands.challenge_auth`);
* STARTTLS (RFC 3207) runs aiosmtpd's, answers ``554 5.5.1`` once TLS is
  active, and turns a failed handshake (the peer's fault) into a
  ``handshake-failed`` decision and a ``tls-failed`` close, never an
  internal error.  The client starts over with EHLO.

AUTH inside a transaction never gets here: the command-order table answers
503 first (:mod:`mta.smtp.rules`).  The session attributes used here
(``server``, ``facts``, ``conn``, ``_stage``, ``_last_code``,
``_close_reason``, ``_closed_logged``) are :class:`ReceivingSMTP`'s.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any

from aiosmtpd.smtp import MISSING, TLSSetupException

from mta.events import ConnectionClosed, PolicyDecision
from mta.smtp import replies as R
from mta.smtp.aiosmtpd_fence import FencedSMTP


class SecureCommands(FencedSMTP):
    """AUTH and STARTTLS (see the module docstring); also the line reader
    the command loop and the AUTH exchange share."""

    server: Any
    facts: Any
    conn: str
    _stage: str
    _last_code: int
    _close_reason: str
    _closed_logged: bool

    async def _read_line(self) -> bytes | None:
        """One command line, or None if it was too long for the reader
        (the rest of the line has then been read and thrown away)."""
        reader = self.reader
        try:
            return await reader.readuntil()
        except asyncio.IncompleteReadError:
            raise ConnectionResetError("connection closed") from None
        except asyncio.LimitOverrunError as exc:
            await reader.read(exc.consumed)
            while True:
                try:
                    await reader.readuntil()
                    return None
                except asyncio.LimitOverrunError as e:
                    await reader.read(e.consumed)

    async def smtp_AUTH(self, arg: str) -> None:
        was = bool(self.session.authenticated)
        self._stage = "smtp-auth"
        await super().smtp_AUTH(arg)
        mech = (arg or "").split()[0].upper() if (arg or "").split() else "-"
        if self.session.authenticated and not was:
            self.facts.authenticated = True
            login = getattr(self.session.auth_data, "login", b"")
            self.facts.auth_user = login.decode("utf-8", "replace") if isinstance(login, bytes) \
                else str(login)
            # Postfix logs sasl_method and sasl_username: who sent is on the record.
            self.server.emit(PolicyDecision, conn=self.conn, stage="smtp-auth", decision="pass",
                             detail=f"mechanism={mech} user={self.facts.auth_user[:64]}",
                             client_ip=self.facts.client_ip)
        elif self.transport is not None:
            # Bad base64, bad credentials, an aborted exchange, a replay after
            # success: the reply is on the record, and so is the failure.
            self.server.emit(PolicyDecision, conn=self.conn, stage="smtp-auth", decision="fail",
                             detail=f"mechanism={mech} reply={self._last_code}",
                             client_ip=self.facts.client_ip)

    async def challenge_auth(self, challenge: str | bytes, encode_to_b64: bool = True,
                             log_client_response: bool = False) -> Any:
        """aiosmtpd's 334 exchange, reading the answer with our line reader
        so an over-long answer gets 500 5.5.6 instead of a ValueError."""
        challenge = challenge.encode() if isinstance(challenge, str) else challenge
        await self.push(b"334 " + (base64.b64encode(challenge) if encode_to_b64 else challenge))
        line = await self._read_line()
        if line is None:
            await self.push(R.R_AUTH_LINE_TOO_LONG)
            return MISSING
        blob = line.strip()
        if blob == b"*":                          # RFC 4954 §4: the client cancels
            await self.push(R.R_AUTH_ABORTED)
            return MISSING
        try:
            return base64.b64decode(blob, validate=True)
        except binascii.Error:
            await self.push(R.R_AUTH_BAD_BASE64)
            return MISSING

    async def smtp_STARTTLS(self, arg: str) -> None:
        """RFC 3207 through aiosmtpd; a failed handshake is the peer's fault:
        recorded and the connection closed, never an internal error."""
        if self.tls_active():
            return await self.push(R.R_TLS_ACTIVE)
        try:
            await super().smtp_STARTTLS(arg)
        except (TLSSetupException, OSError, AttributeError) as exc:
            self.server.emit(PolicyDecision, conn=self.conn, stage="smtp-starttls",
                             decision="handshake-failed",
                             detail=f"{type(exc.__cause__ or exc).__name__}",
                             client_ip=self.facts.client_ip)
            self._close_reason = "tls-failed"
            if self._original_transport_close():
                # The TLS layer never reached us as its app protocol, so it
                # will not pass connection_lost on: record the close here.
                self._closed_logged = True
                self.server.emit(ConnectionClosed, conn=self.conn, reason="tls-failed")
                if self in self.server.connections:
                    self.server.connections.remove(self)
            raise ConnectionResetError("TLS handshake failed") from None
        if self.tls_active():
            self.facts.helo = ""       # RFC 3207 §4.2: the client starts over with EHLO

    def _original_transport_close(self) -> bool:
        """Close the connection under a failed TLS layer; True if it was open."""
        if self._closed_logged:
            return False
        for t in (self.transport, self.plain_transport()):
            if t is not None and not t.is_closing():
                t.close()
        return True
