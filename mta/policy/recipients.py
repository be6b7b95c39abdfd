"""Per-message recipient limit, in both behaviours users meet.

* ``conformant``: recipients after the N-th get "452 4.5.3 Error: too many
  recipients" (Postfix's ``smtpd_recipient_limit`` text).  RFC 5321
  §4.5.3.1.10 makes 452 the required reply, and the sender retries the rest
  in a new transaction: nothing is lost.
* ``documented``: what some providers document ("the first 30 are delivered,
  the rest ignored"): every recipient gets 250 but only the first N are
  kept.  That is silent loss under RFC 5321 §6.1; it exists so that the
  ``conservation`` and ``max-recipients-30`` checks can show it.  Each drop
  is noted (PolicyDecision ``dropped-over-limit``) so that the log tells the
  truth, but it is *not* a Discarded event: nobody told the sender.

Place this stage after relay control, so that only recipients the server
would otherwise accept are counted.  A limit under 100 is legal only as
declared site policy (RFC 5321 §4.5.3.1.8).
"""
from __future__ import annotations

from dataclasses import dataclass

from mta.policy.chain import Stage
from mta.policy.decision import Decision, Facts, Note

TOO_MANY_CODE = 452
TOO_MANY_STATUS = "4.5.3"
TOO_MANY_TEXT = "Error: too many recipients"
MODES = ("conformant", "documented")
POSTFIX_RECIPIENT_LIMIT = 1000


@dataclass
class RecipientLimit(Stage):
    """At most ``limit`` recipients per message; ``mode`` says what happens
    to the rest."""

    limit: int = POSTFIX_RECIPIENT_LIMIT
    mode: str = "conformant"
    name: str = "recipient_limit"

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError("recipient limit must be at least 1")
        if self.mode not in MODES:
            raise ValueError(f"recipient limit mode must be one of {MODES}")

    def on_rcpt(self, facts: Facts, rcpt) -> Decision | None:
        if len(facts.rcpts) < self.limit:
            return None
        if self.mode == "conformant":
            return Decision.defer(self.name, TOO_MANY_CODE, TOO_MANY_STATUS, TOO_MANY_TEXT)
        return Decision.accept(self.name, keep=False, tags=("dropped",),
                               notes=(Note("dropped-over-limit", rcpt.mailbox),))
