"""Relay control: who may send mail to which recipient through this host.

Modelled on Postfix's ``permit_mynetworks, permit_sasl_authenticated,
reject_unauth_destination`` with ``relay_recipient_maps`` and
``allow_untrusted_routing = no``:

1. A recipient whose local part still routes somewhere else (``%``, ``!``,
   a second ``@``: every nmap smtp-open-relay form) is a relay attempt,
   whatever its domain, unless the client may relay.
2. A local domain (final delivery here) is accepted, if the user is known
   (``local_recipients``; "User unknown in local recipient table").
3. A relay domain (this host is its backup MX or queueing server) is
   accepted if the user is in the valid-recipient list ("User unknown in
   relay recipient table", which keeps a backup MX from filling its queue
   with mail for nobody).
4. Any other domain only for clients that may relay: trusted networks
   (minus ``untrusted_networks``, such as customer-run servers inside an
   ISP's address space), authenticated clients, or a grant of ``"relay"``
   from an earlier stage (POP-before-SMTP).
5. Everything else: "554 5.7.1 <rcpt>: Relay access denied" (Postfix), or,
   on a relay that relays only after AUTH (``auth_required``) for a client
   that has not authenticated, RFC 4954 §6's "530 5.7.0 Authentication
   required", which tells a mail client to ask for the password.

Unqualified recipients other than ``postmaster`` get Postfix's
``reject_non_fqdn_recipient`` reply (504 5.5.2).  Domain literals are local
only when listed in ``local_domains``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from mta.addresses import Address, domain_matches
from mta.policy.access import Networks
from mta.policy.chain import Stage
from mta.policy.decision import Decision, Facts, Note

RELAY_DENIED_CODE = 554
RELAY_DENIED_STATUS = "5.7.1"
UNKNOWN_USER_CODE = 550
UNKNOWN_USER_STATUS = "5.1.1"
NON_FQDN_CODE = 504
NON_FQDN_STATUS = "5.5.2"
AUTH_REQUIRED_CODE = 530
AUTH_REQUIRED_STATUS = "5.7.0"


def _known(address: Address, table: frozenset[str] | None) -> bool:
    """``table`` None: everybody is known.  Otherwise entries are full
    addresses (lower-case) or ``@domain`` catch-alls."""
    if table is None:
        return True
    mbox = address.mailbox.lower()
    return mbox in table or f"@{address.domain}" in table


@dataclass
class RelayControl(Stage):
    """Decide each RCPT by destination and client (see module docstring)."""

    local_domains: tuple[str, ...] = ()
    local_recipients: frozenset[str] | None = None
    relay_domains: tuple[str, ...] = ()
    relay_recipients: frozenset[str] | None = None
    trusted: Networks = field(default_factory=Networks)
    untrusted: Networks = field(default_factory=Networks)
    allow_authenticated: bool = False
    auth_required: bool = False
    name: str = "relay"

    def may_relay(self, facts: Facts) -> str:
        """Why this client may relay (``""`` if it may not)."""
        if facts.client_ip in self.trusted and facts.client_ip not in self.untrusted:
            return "trusted-network"
        if self.allow_authenticated and facts.authenticated:
            return "authenticated"
        if "relay" in facts.grants:
            return "granted"
        return ""

    def _denied(self, rcpt: Address, facts: Facts | None = None) -> Decision:
        if self.auth_required and facts is not None and not facts.authenticated:
            return Decision.reject(self.name, AUTH_REQUIRED_CODE, AUTH_REQUIRED_STATUS,
                                   "Authentication required")
        return Decision.reject(self.name, RELAY_DENIED_CODE, RELAY_DENIED_STATUS,
                               f"<{rcpt.mailbox}>: Relay access denied")

    def _unknown(self, rcpt: Address, table: str) -> Decision:
        return Decision.reject(self.name, UNKNOWN_USER_CODE, UNKNOWN_USER_STATUS,
                               f"<{rcpt.mailbox}>: Recipient address rejected: "
                               f"User unknown in {table} recipient table")

    def on_rcpt(self, facts: Facts, rcpt: Address) -> Decision | None:
        why = self.may_relay(facts)
        if rcpt.routed and not why:
            return self._denied(rcpt, facts)
        if not rcpt.domain:
            if rcpt.local.lower() == "postmaster" and self.local_domains:
                return Decision.accept(self.name, tags=("local",))
            return Decision.reject(self.name, NON_FQDN_CODE, NON_FQDN_STATUS,
                                   f"<{rcpt.mailbox}>: Recipient address rejected: "
                                   "need fully-qualified address")
        if domain_matches(rcpt.domain, self.local_domains):
            if not _known(rcpt, self.local_recipients):
                return self._unknown(rcpt, "local")
            return Decision.accept(self.name, tags=("local",))
        if domain_matches(rcpt.domain, self.relay_domains):
            if not _known(rcpt, self.relay_recipients):
                return self._unknown(rcpt, "relay")
            return Decision.accept(self.name, tags=("relay-domain",))
        if why:
            # On the record: the no-open-relay check reads why relaying was allowed.
            return Decision.accept(self.name, tags=("relay", why),
                                   notes=(Note("relay-permitted", f"{why} {rcpt.mailbox}"),))
        return self._denied(rcpt, facts)
