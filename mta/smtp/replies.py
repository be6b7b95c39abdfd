"""Reply texts of the receiving server (Postfix's wording where it has one).

Kept apart so the session, the hooks and tests share one spelling of each
reply; :mod:`mta.smtp.server` re-exports them under the same names.
"""
from __future__ import annotations

R_SEND_HELO = "503 5.5.1 Error: send HELO/EHLO first"
R_NESTED_MAIL = "503 5.5.1 Error: nested MAIL command"
R_NEED_MAIL = "503 5.5.1 Error: need MAIL command"
R_NEED_RCPT = "503 5.5.1 Error: need RCPT command"
R_MAIL_SYNTAX = "501 5.5.4 Syntax: MAIL FROM:<address>"
R_RCPT_SYNTAX = "501 5.5.4 Syntax: RCPT TO:<address>"
R_DATA_SYNTAX = "501 5.5.4 Syntax: DATA"
R_AUTH_IN_TRANSACTION = "503 5.5.1 Error: MAIL transaction in progress"
R_AUTH_DISABLED = "503 5.5.1 Error: authentication not enabled"
R_BAD_SYNTAX = "500 5.5.2 Error: bad syntax"
R_NUL = "500 5.5.2 Error: NUL character in command"
R_NOT_ASCII = "500 5.5.2 Error: 8-bit characters in command"
R_LINE_TOO_LONG = "500 5.5.2 Error: command line too long"
R_UNKNOWN = "502 5.5.2 Error: command not recognized"
R_HEADER_AS_COMMAND = "221 2.7.0 Error: I can break rules, too. Goodbye."
R_START_DATA = "354 End data with <CR><LF>.<CR><LF>"
R_QUEUE_ERROR = "451 4.3.0 Error: queue file write error"
R_BYE = "221 2.0.0 Bye"
R_VRFY = "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery"
