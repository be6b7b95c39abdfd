"""Reply texts of the receiving server (Postfix's wording where it has one).

One spelling of each reply for the session, the rules, the hooks and the
tests.  Templates take ``str.format`` fields.  Every constant's code agrees
with its enhanced status code (RFC 3463; tests/test_server_replies.py).
"""
from __future__ import annotations

R_SEND_HELO = "503 5.5.1 Error: send HELO/EHLO first"
R_NESTED_MAIL = "503 5.5.1 Error: nested MAIL command"
R_NEED_MAIL = "503 5.5.1 Error: need MAIL command"
R_NEED_RCPT = "503 5.5.1 Error: need RCPT command"
R_MAIL_SYNTAX = "501 5.5.4 Syntax: MAIL FROM:<address>"
R_RCPT_SYNTAX = "501 5.5.4 Syntax: RCPT TO:<address>"
R_DATA_SYNTAX = "501 5.5.4 Syntax: DATA"
R_HELO_SYNTAX = "501 5.5.4 Syntax: {verb} hostname"
R_BODY_SYNTAX = "501 5.5.4 Error: BODY can only be one of 7BIT, 8BITMIME"
R_NULL_RCPT = "501 5.1.3 Bad recipient address syntax"
R_UNSUPPORTED_OPTION = "555 5.5.4 Unsupported option: {name}"
R_AUTH_IN_TRANSACTION = "503 5.5.1 Error: MAIL transaction in progress"
R_AUTH_DISABLED = "503 5.5.1 Error: authentication not enabled"
R_AUTH_LINE_TOO_LONG = "500 5.5.6 Authentication exchange line is too long"   # RFC 4954 §4
R_AUTH_ABORTED = "501 5.7.0 Auth aborted"                                     # aiosmtpd's text
R_AUTH_BAD_BASE64 = "501 5.5.2 Can't decode base64"                           # aiosmtpd's text
R_MUST_STARTTLS = "530 5.7.0 Must issue a STARTTLS command first"             # RFC 3207 §4
R_TLS_ACTIVE = "554 5.5.1 Error: TLS already active"                          # Postfix
R_ACCESS_DENIED = "503 5.7.1 Error: access denied for [{ip}]"
R_BAD_SYNTAX = "500 5.5.2 Error: bad syntax"
R_NUL = "500 5.5.2 Error: NUL character in command"
R_NOT_ASCII = "500 5.5.2 Error: 8-bit characters in command"
R_LINE_TOO_LONG = "500 5.5.2 Error: command line too long"
R_UNKNOWN = "502 5.5.2 Error: command not recognized"
R_HEADER_AS_COMMAND = "221 2.7.0 Error: I can break rules, too. Goodbye."
R_TOO_MANY_ERRORS = "421 4.7.0 {host} Error: too many errors"
R_CALL_LIMIT = "421 4.7.0 {verb} sent too many times"
R_TIMEOUT = "421 4.4.2 {host} Error: timeout exceeded"
R_INTERNAL_ERROR = "451 4.3.0 Error: internal error"
R_OK = "250 2.0.0 Ok"
R_MAIL_OK = "250 2.1.0 Ok"
R_RCPT_OK = "250 2.1.5 Ok"
R_START_DATA = "354 End data with <CR><LF>.<CR><LF>"
R_QUEUED = "250 2.0.0 Ok: queued as {qid}"
R_NO_QUEUE = "451 4.3.0 Error: no queue"
R_QUEUE_ERROR = "451 4.3.0 Error: queue file write error"
R_TOO_BIG = "552 5.3.4 Message size exceeds fixed limit"
R_BYE = "221 2.0.0 Bye"
R_VRFY = "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery"


class ReplyHooks:
    """The aiosmtpd handler: its hooks give our texts for the commands
    aiosmtpd itself implements (RSET, NOOP, QUIT, VRFY).  It holds no state
    and never sees the session; MAIL, RCPT and DATA are the session's own."""

    async def handle_RSET(self, server, session, envelope) -> str:
        return R_OK

    async def handle_NOOP(self, server, session, envelope, arg) -> str:
        return R_OK

    async def handle_QUIT(self, server, session, envelope) -> str:
        return R_BYE

    async def handle_VRFY(self, server, session, envelope, address) -> str:
        return R_VRFY
