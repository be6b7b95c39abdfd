"""The mail transaction's rules: MAIL and RCPT arguments, what the policy
chain's outcome means for each command, and the trace header.

The flow is one way: the session parses a command with these functions,
asks the (pure) chain for an :class:`~mta.policy.Outcome`, and turns the
outcome into a reply and a change of its own state with these functions.
Nothing here sees the session, and the chain never calls back into it.
"""
from __future__ import annotations

import email.utils
from dataclasses import dataclass
from typing import Sequence

from mta.addresses import (Address, AddressError, parse_esmtp_params, parse_path,
                           parse_size_param)
from mta.policy import Outcome
from mta.smtp import replies as R
from mta.smtp.rules import overshoot_forgiven

#: BODY= values the server takes (RFC 6152: 8BITMIME is advertised).
BODY_TYPES = ("7BIT", "8BITMIME")


@dataclass(frozen=True)
class MailArgs:
    """A parsed ``MAIL FROM:`` argument."""

    sender: Address
    options: tuple[str, ...]          # the ESMTP parameters as given
    declared_size: int | None         # SIZE= (RFC 1870), if given


def parse_mail(arg: str | None, extended: bool) -> MailArgs | str:
    """``MAIL`` 's argument, or the reply refusing it.  Parameters need
    EHLO (RFC 5321 §4.1.1.11); a bad sender is 5.1.7 (RFC 3463)."""
    if not arg or arg[:5].upper() != "FROM:" or not arg[5:].strip():
        return R.R_MAIL_SYNTAX
    try:
        address, ptext = parse_path(arg[5:])
        params = parse_esmtp_params(ptext)
        if params and not extended:
            return R.R_MAIL_SYNTAX
        size = params.pop("SIZE", None)
        declared = parse_size_param(size) if size is not None else None
    except AddressError as exc:
        enhanced = "5.1.7" if exc.enhanced == "5.1.3" else exc.enhanced
        return f"{exc.code} {enhanced} {exc.text}"
    if params.pop("BODY", "7BIT") not in BODY_TYPES:
        return R.R_BODY_SYNTAX
    if params:
        return R.R_UNSUPPORTED_OPTION.format(name=sorted(params)[0])
    return MailArgs(address, tuple(ptext.split()), declared)


def parse_rcpt(arg: str | None) -> Address | str:
    """``RCPT`` 's argument, or the reply refusing it (no parameters are
    supported; the null path is no recipient)."""
    if not arg or arg[:3].upper() != "TO:" or not arg[3:].strip():
        return R.R_RCPT_SYNTAX
    try:
        address, ptext = parse_path(arg[3:])
        params = parse_esmtp_params(ptext)
    except AddressError as exc:
        return f"{exc.code} {exc.enhanced} {exc.text}"
    if address.is_null:
        return R.R_NULL_RCPT
    if params:
        return R.R_UNSUPPORTED_OPTION.format(name=sorted(params)[0])
    return address


def mail_reply(outcome: Outcome) -> str:
    """The reply to a MAIL the chain decided."""
    return outcome.decision.reply if outcome.refused else R.R_MAIL_OK


@dataclass(frozen=True)
class RcptVerdict:
    """What a RCPT the chain decided means for the session."""

    reply: str
    accepted: bool
    keep: bool            # accepted and delivered (False: acknowledged, then dropped)
    overshoot: int        # "too many recipients" refusals so far
    forgiven: bool        # this refusal is no client error


def rcpt_verdict(outcome: Outcome, overshoot: int) -> RcptVerdict:
    """The chain's outcome for one recipient, given the overshoot so far.

    Postfix: "too many recipients" (452 4.5.3) is not a client error until
    smtpd_recipient_overshoot_limit is passed."""
    d = outcome.decision
    if outcome.refused:
        if (d.code, d.enhanced) == (452, "4.5.3"):
            overshoot += 1
            return RcptVerdict(d.reply, False, False, overshoot, overshoot_forgiven(overshoot))
        return RcptVerdict(d.reply, False, False, overshoot, False)
    return RcptVerdict(R.R_RCPT_OK, True, outcome.keep, overshoot, False)


def data_refusal(outcome: Outcome, overflow: bool, has_message: bool) -> str | None:
    """The reply refusing a message after DATA, or None to queue it.  A
    message over the limit is refused even when no stage claimed the limit."""
    if outcome.refused:
        return outcome.decision.reply
    if overflow or not has_message:
        return R.R_TOO_BIG
    return None


def with_protocol(esmtp: bool, authenticated: bool) -> str:
    """The ``with`` clause of Received (RFC 3848: ESMTPA after AUTH)."""
    return "ESMTPA" if authenticated else ("ESMTP" if esmtp else "SMTP")


def received_header(*, helo: str, client_ip: str, by: str, protocol: str, conn: str,
                    when: float) -> str:
    """The Received line this server adds (RFC 5321 §4.4), folded, without
    its final CRLF; ``conn`` stands in for the ``id`` clause."""
    date = email.utils.formatdate(when, usegmt=True)
    return (f"Received: from {helo} ([{client_ip}])\r\n"
            f"\tby {by} with {protocol} ({conn});\r\n\t{date}")


def trace_block(received: str | None, headers: Sequence[tuple[str, str]]) -> bytes:
    """The header lines put before the message: Received first, then the
    stages' headers in chain order."""
    lines = [f"{name}: {value}" for name, value in headers]
    if received is not None:
        lines.insert(0, received)
    return "".join(x + "\r\n" for x in lines).encode("utf-8", "replace")
