"""The delivery reply rules: what a reply at each stage of a client
transaction means for the recipients it concerns.

One table, :data:`RULES`, maps (stage, reply class) to an action; the
client (:mod:`mta.delivery.client`) looks every reply up here and does what
it says, and :func:`render_markdown` prints the table for ``docs/design.md``.

* Stages: the connection with its greeting, EHLO/HELO, MAIL, RCPT, DATA
  (the reply after the data counts as DATA).
* Reply classes: ``4xx`` (any reply that is not 5xx, the transient kind),
  ``5xx``, and ``none``: no reply at all (connection refused, timed out or
  lost at that stage).
* Actions: ``next-mx`` moves the recipients still pending on to the next
  address (RFC 5321 §5.1: try the next MX); when no address is left (or the
  session limit is reached) they are deferred with the last reply.
  ``defer`` keeps the recipient for a later retry; ``bounce`` gives it up
  (a DSN to the sender).  A 4xx to RCPT defers only that recipient; MAIL and
  DATA concern every recipient of the transaction.

One case is no reply rule: a cached connection found closed before MAIL got
a reply says nothing about the destination, so the client retries once on
a fresh connection to the same address.
"""
from __future__ import annotations

from enum import Enum


class Stage(str, Enum):
    """Where in the client transaction a reply (or its absence) came."""

    GREETING = "greeting"      # connect and the server's greeting
    EHLO = "EHLO"
    MAIL = "MAIL"
    RCPT = "RCPT"
    DATA = "DATA"


class ReplyClass(str, Enum):
    """What kind of answer: transient, permanent, or none (no reply)."""

    TRANSIENT = "4xx"
    PERMANENT = "5xx"
    NONE = "none"


class Action(str, Enum):
    """What happens to the recipients the reply concerns."""

    NEXT_MX = "next-mx"
    DEFER = "defer"
    BOUNCE = "bounce"


#: The rules, one per stage and reply class (see the module docstring).
RULES: dict[tuple[Stage, ReplyClass], Action] = {
    (Stage.GREETING, ReplyClass.NONE): Action.NEXT_MX,
    (Stage.GREETING, ReplyClass.TRANSIENT): Action.NEXT_MX,
    (Stage.GREETING, ReplyClass.PERMANENT): Action.NEXT_MX,
    (Stage.EHLO, ReplyClass.NONE): Action.NEXT_MX,
    (Stage.EHLO, ReplyClass.TRANSIENT): Action.NEXT_MX,
    (Stage.EHLO, ReplyClass.PERMANENT): Action.NEXT_MX,
    (Stage.MAIL, ReplyClass.NONE): Action.NEXT_MX,
    (Stage.MAIL, ReplyClass.TRANSIENT): Action.NEXT_MX,
    (Stage.MAIL, ReplyClass.PERMANENT): Action.BOUNCE,
    (Stage.RCPT, ReplyClass.NONE): Action.NEXT_MX,
    (Stage.RCPT, ReplyClass.TRANSIENT): Action.DEFER,
    (Stage.RCPT, ReplyClass.PERMANENT): Action.BOUNCE,
    (Stage.DATA, ReplyClass.NONE): Action.NEXT_MX,
    (Stage.DATA, ReplyClass.TRANSIENT): Action.NEXT_MX,
    (Stage.DATA, ReplyClass.PERMANENT): Action.BOUNCE,
}

def reply_class(code: int | None) -> ReplyClass:
    """The class of a reply code; ``None`` (no reply) is ``none``."""
    if code is None:
        return ReplyClass.NONE
    return ReplyClass.PERMANENT if code >= 500 else ReplyClass.TRANSIENT


def action_for(stage: Stage, code: int | None) -> Action:
    """What a reply ``code`` (None: no reply) at ``stage`` means."""
    return RULES[(stage, reply_class(code))]


def render_markdown() -> str:
    """The rules as a Markdown table, one row per stage."""
    classes = list(ReplyClass)
    lines = ["| stage | " + " | ".join(c.value for c in classes) + " |",
             "|---" * (len(classes) + 1) + "|"]
    for stage in Stage:
        cells = [RULES[(stage, c)].value for c in classes]
        lines.append(f"| {stage.value} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
