"""The aiosmtpd hooks of the receiving server: they run the policy chain
for MAIL, RCPT and DATA and hand accepted mail to the server's sink."""
from __future__ import annotations

import email.utils
from typing import TYPE_CHECKING

from mta.events import ComponentError
from mta.policy import Phase
from mta.smtp.replies import R_BYE, R_QUEUE_ERROR, R_VRFY

if TYPE_CHECKING:   # only for annotations: both modules import this one
    from mta.smtp.server import SmtpServer
    from mta.smtp.session import ReceivingSMTP

RECIPIENT_OVERSHOOT_LIMIT = 1000    # Postfix smtpd_recipient_overshoot_limit


class PolicyHandler:
    """aiosmtpd hooks that run the policy chain and hand mail to the sink."""

    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_MAIL(self, smtp: ReceivingSMTP, session, envelope, address, options) -> str:
        smtp.facts.mail_from = address
        outcome = await smtp.decide(Phase.MAIL, address)
        if outcome.refused:
            smtp.facts.mail_from = None
            smtp.facts.declared_size = None
            return outcome.decision.reply
        envelope.mail_from = address.mailbox
        envelope.mail_options.extend(options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, smtp: ReceivingSMTP, session, envelope, address, options) -> str:
        outcome = await smtp.decide(Phase.RCPT, address)
        if outcome.refused:
            if (outcome.decision.code, outcome.decision.enhanced) == (452, "4.5.3"):
                # Postfix: "too many recipients" is not a client error until
                # smtpd_recipient_overshoot_limit (1000) is passed.
                smtp.overshoot += 1
                smtp._forgive = smtp.overshoot <= RECIPIENT_OVERSHOOT_LIMIT
            return outcome.decision.reply
        envelope.rcpt_tos.append(address.mailbox)
        smtp.facts.rcpts.append(address.mailbox)
        if outcome.keep:
            smtp.facts.kept.append(address.mailbox)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, smtp: ReceivingSMTP, session, envelope, message) -> str:
        facts = smtp.facts
        outcome = await smtp.decide(Phase.DATA, message if message is not None else b"")
        if outcome.refused:
            return outcome.decision.reply
        if facts.data_overflow or message is None:   # no stage claimed the limit
            return "552 5.3.4 Message size exceeds fixed limit"
        if self.server.sink is None:
            return "451 4.3.0 Error: no queue"
        data = self._headers(smtp) + message
        try:
            qid = await self.server.sink.accept(
                conn=smtp.conn, client_ip=facts.client_ip, helo=facts.helo,
                mail_from=envelope.mail_from or "", rcpts=list(facts.kept),
                acknowledged=list(facts.rcpts), data=data)
        except Exception as exc:
            self.server.emit(ComponentError, where="smtp DATA sink",
                             error=f"{type(exc).__name__}: {exc}")
            return R_QUEUE_ERROR
        return f"250 2.0.0 Ok: queued as {qid}"

    def _headers(self, smtp: ReceivingSMTP) -> bytes:
        lines = [f"{name}: {value}" for name, value in smtp.facts.headers]
        if self.server.config.add_received:
            f = smtp.facts
            proto = "ESMTPA" if f.authenticated else ("ESMTP" if f.esmtp else "SMTP")
            date = email.utils.formatdate(self.server.ctx.now(), usegmt=True)
            lines.insert(0, f"Received: from {f.helo} ([{f.client_ip}])\r\n"
                            f"\tby {self.server.ctx.hostname} with {proto} ({smtp.conn});"
                            f"\r\n\t{date}")
        return "".join(x + "\r\n" for x in lines).encode("utf-8", "replace")

    async def handle_RSET(self, smtp, session, envelope) -> str:
        return "250 2.0.0 Ok"

    async def handle_NOOP(self, smtp, session, envelope, arg) -> str:
        return "250 2.0.0 Ok"

    async def handle_QUIT(self, smtp, session, envelope) -> str:
        return R_BYE

    async def handle_VRFY(self, smtp, session, envelope, address) -> str:
        return R_VRFY
