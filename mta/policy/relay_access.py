"""Restricted-relay stages: POP-before-SMTP, AUTH required, sender affiliation.

They serve the restricted relays of seeds 002 and 003:

* :class:`PopBeforeSmtp` reads a :class:`~mta.pop3.grants.RelayGrants`
  table (filled by the POP3 server's ``on_login`` hook) at connect and at
  MAIL.  A client with an open grant gets the ``"relay"`` grant (which
  :class:`~mta.policy.relay.RelayControl` honours) and ``"pop:<user>"``
  naming the account that opened it.  Without a grant, the seed's default
  ("By default, the SMTP server will reject all connections") refuses at
  connect with a 554 greeting (``refuse_at="connect"``); ``"rcpt"`` lets
  the dialogue go on and leaves the refusal to relay control at RCPT.
  Trusted networks are never refused at connect.
* :class:`AuthRequired`: on an AUTH-only relay (one that serves no domain
  of its own, so nothing may be sent through it without logging in), MAIL
  from a client that has not authenticated gets RFC 4954 §6's
  ``530 5.7.0 Authentication required`` ("SHOULD be returned by any command
  other than AUTH, EHLO, HELO, NOOP, RSET, or QUIT when server policy
  requires authentication in order to perform the requested action").
  Postfix with ``smtpd_relay_restrictions = permit_sasl_authenticated,
  reject`` would wait for RCPT and answer ``554 5.7.1 ... Access denied``;
  we follow the RFC, which tells a mail client to ask for the password.
  Trusted networks and POP-before-SMTP grants pass.
* :class:`SenderAffiliation`: the seed's "sending mail 'from' addresses
  affiliated with your accounts": MAIL FROM must be in the domains of the
  authenticated user, or of the POP account that opened the grant, else
  ``553 5.7.1 <addr>: Sender address rejected: not owned by user <u>``
  (Postfix's ``reject_sender_login_mismatch`` wording).  A client that is
  neither authenticated nor granted is not judged here (relay control
  refuses its recipients); the null sender ``<>`` is not judged either
  (Postfix skips it too: bounces carry no owner).

The grant table is read through ``clock`` (the host's event clock,
``HostContext.now``), like the greylist stage's store: the decision for
one instant is a pure function of the table.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

from mta.addresses import Address, domain_matches
from mta.policy.access import Networks
from mta.policy.chain import Stage
from mta.policy.decision import Decision, Facts, Note

REFUSE_AT = ("connect", "rcpt")
POP_GRANT_PREFIX = "pop:"

AUTH_REQUIRED_CODE = 530
AUTH_REQUIRED_STATUS = "5.7.0"
CONNECT_REFUSED_CODE = 554
CONNECT_REFUSED_STATUS = "5.7.1"
SENDER_REFUSED_CODE = 553
SENDER_REFUSED_STATUS = "5.7.1"


def pop_user(facts: Facts) -> str:
    """The POP account whose login opened relaying for this session, or ``""``."""
    for g in sorted(facts.grants):
        if g.startswith(POP_GRANT_PREFIX):
            return g[len(POP_GRANT_PREFIX):]
    return ""


@dataclass
class PopBeforeSmtp(Stage):
    """Relaying after a POP3 login (see the module docstring).

    ``grants`` is any object with ``current(ip, t)`` returning a grant with
    ``user`` and ``expires`` (or None): :class:`~mta.pop3.grants.RelayGrants`.
    """

    grants: object
    clock: Callable[[], float]
    refuse_at: str = "connect"
    exempt: Networks = field(default_factory=Networks)
    name: str = "pop-before-smtp"

    def __post_init__(self) -> None:
        if self.refuse_at not in REFUSE_AT:
            raise ValueError(f"refuse_at must be one of {REFUSE_AT}, got {self.refuse_at!r}")

    def _grant(self, facts: Facts) -> Decision | None:
        g = self.grants.current(facts.client_ip, self.clock())  # type: ignore[attr-defined]
        if g is None:
            return None
        if "relay" in facts.grants and pop_user(facts) == g.user:
            return None                       # already granted in this session
        return Decision.accept(
            self.name, grants=("relay", POP_GRANT_PREFIX + g.user),
            notes=(Note("relay-permitted",
                        f"pop-before-smtp user={g.user} until={g.expires:.3f}"),))

    def on_connect(self, facts: Facts) -> Decision | None:
        d = self._grant(facts)
        if d is not None or self.refuse_at != "connect" or facts.client_ip in self.exempt:
            return d
        return Decision.reject(
            self.name, CONNECT_REFUSED_CODE, CONNECT_REFUSED_STATUS,
            f"<{facts.client_ip}>: Client host rejected: Access denied; "
            "check your mail (POP3) before sending")

    def on_mail(self, facts: Facts, sender: Address) -> Decision | None:
        # A grant opened after this session connected counts from MAIL on.
        return self._grant(facts)


@dataclass
class AuthRequired(Stage):
    """530 5.7.0 to MAIL before AUTH on an AUTH-only relay (module docstring)."""

    exempt: Networks = field(default_factory=Networks)
    name: str = "auth-required"

    def on_mail(self, facts: Facts, sender: Address) -> Decision | None:
        if facts.authenticated or "relay" in facts.grants or facts.client_ip in self.exempt:
            return None
        return Decision.reject(self.name, AUTH_REQUIRED_CODE, AUTH_REQUIRED_STATUS,
                               "Authentication required")


@dataclass
class SenderAffiliation(Stage):
    """MAIL FROM must belong to the user's domains (see the module docstring).

    ``domains`` maps a user (SMTP AUTH or POP account) to the domains its
    senders may use; a user missing from the map owns no domain.
    """

    domains: Mapping[str, tuple[str, ...]]
    name: str = "sender-affiliated"

    def owner(self, facts: Facts) -> str | None:
        """The user MAIL FROM is judged for, or None when nobody is."""
        if facts.authenticated and facts.auth_user:
            return facts.auth_user
        user = pop_user(facts)
        return user if user else None

    def on_mail(self, facts: Facts, sender: Address) -> Decision | None:
        user = self.owner(facts)
        if user is None or not sender.mailbox:
            return None
        owned = tuple(self.domains.get(user, ()))
        if sender.domain and domain_matches(sender.domain.lower(), owned):
            return Decision.accept(self.name, tags=("affiliated",))
        return Decision.reject(self.name, SENDER_REFUSED_CODE, SENDER_REFUSED_STATUS,
                               f"<{sender.mailbox}>: Sender address rejected: "
                               f"not owned by user {user}")
