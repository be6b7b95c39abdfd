"""The restricted relays' role: nobody relays by default; SMTP AUTH or a
POP3 login (POP-before-SMTP) opens it; sender affiliation; attachments."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping

from mta.policy import Networks, PolicyChain, RelayControl, Stage
from mta.roles.base import check_domains, need, ReceivingRole, RoleError

if TYPE_CHECKING:
    from mta.context import HostContext
    from mta.smtp.server import SmtpServer


@dataclass(frozen=True)
class RestrictedRelay(ReceivingRole):
    """A relay for customers only (see the module docstring).

    ``users`` (SMTP AUTH, PLAIN and LOGIN) with ``allow_auth_relay``:
    relaying after AUTH, ``530 5.7.0 Authentication required`` before: to
    MAIL on an AUTH-only relay (no local or relay domains, no POP3
    accounts: RFC 4954 §6), else to RCPT for a domain it does not serve.
    ``pop_users`` (``{user: password}``; ``pop_mailboxes`` maps a user to its
    mailbox, default the user name): a POP3 server on ``pop_port`` over the
    host's mailbox store whose logins open relaying from the client's
    address for ``pop_window`` seconds (renewed by each login);
    ``refuse_at`` ``"connect"`` (the seed's "will reject all connections":
    a 554 greeting) or ``"rcpt"`` (Relay access denied) for everyone else.
    ``sender_domains`` (``{user: domains}``) switches the sender-affiliation
    rule on.  ``blocked_attachments`` (extensions) switches the attachment
    stage on.  One grant table serves every port of the role: build it
    with :meth:`build_grants` and pass it to :meth:`build_server` and
    :meth:`build_pop3`.
    """

    pop_users: Mapping[str, str] | None = None
    pop_mailboxes: Mapping[str, str] | None = None
    pop_window: float = 90 * 60.0
    pop_port: int = 110
    refuse_at: str = "connect"
    sender_domains: Mapping[str, tuple[str, ...]] | None = None
    blocked_attachments: tuple[str, ...] | None = None
    role: ClassVar[str] = "relay"

    def __post_init__(self) -> None:
        super().__post_init__()
        from mta.filters.attachments import AttachmentRules
        from mta.policy.relay_access import REFUSE_AT
        r = self.role
        need(self.refuse_at in REFUSE_AT, r, "refuse_at", f"must be one of {REFUSE_AT}")
        need(self.pop_window > 0, r, "pop_window", "must be positive")
        need(0 < self.pop_port < 65536, r, "pop_port", "must be a TCP port")
        if self.pop_users is not None:
            need(bool(self.pop_users), r, "pop_users", "needs at least one POP3 account")
            need(not (self.users and self.refuse_at == "connect"), r, "refuse_at",
                  "a 554 greeting leaves AUTH users no way in: refuse at 'rcpt' when both "
                  "AUTH and POP-before-SMTP are on")
            unknown = sorted(set(self.pop_mailboxes or {}) - set(self.pop_users))
            need(not unknown, r, "pop_mailboxes", f"{unknown} have no POP3 password")
        if self.sender_domains is not None:
            known = set(self.users or {}) | set(self.pop_users or {})
            need(bool(known), r, "sender_domains",
                  "the rule needs AUTH users or POP3 accounts to tie senders to")
            for user, domains in sorted(self.sender_domains.items()):
                need(user in known, r, "sender_domains", f"{user!r} is no AUTH or POP3 user")
                check_domains(r, "sender_domains", tuple(domains))
        if self.blocked_attachments is not None:
            try:
                AttachmentRules(tuple(self.blocked_attachments))
            except ValueError as exc:
                raise RoleError(f"{r}.blocked_attachments: {exc}") from None

    @property
    def auth_only(self) -> bool:
        """Nothing passes without AUTH: users relay after it, and the relay
        serves no domain and has no POP-before-SMTP grants of its own."""
        return (self.allow_auth_relay and self.users is not None and self.pop_users is None
                and not self.local_domains and not self.relay_domains)

    def build_grants(self) -> Any:
        """The POP-before-SMTP grant table (None when POP-before-SMTP is off)."""
        from mta.pop3.grants import RelayGrants
        return RelayGrants(self.pop_window) if self.pop_users is not None else None

    def build_chain(self, grants: Any = None,   # type: ignore[override]
                    clock: Callable[[], float] | None = None) -> PolicyChain:
        """The chain: the common one with POP-before-SMTP and the sender
        rule ahead of relay control and the attachment stage after it."""
        from mta.filters.attachments import AttachmentRules
        from mta.policy.attachments import AttachmentStage
        from mta.policy.relay_access import AuthRequired, PopBeforeSmtp, SenderAffiliation
        before: list[Stage] = []
        if self.pop_users is not None:
            if grants is None or clock is None:
                raise RoleError(f"{self.role}.pop_users: the chain needs the grant table "
                                "and the host's clock (build_grants, ctx.now)")
            before.append(PopBeforeSmtp(grants, clock, refuse_at=self.refuse_at,
                                        exempt=Networks(self.trusted_networks)))
        if self.auth_only:
            before.append(AuthRequired(exempt=Networks(self.trusted_networks)))
        if self.sender_domains is not None:
            before.append(SenderAffiliation({u: tuple(d.lower() for d in ds)
                                             for u, ds in self.sender_domains.items()}))
        after: list[Stage] = []
        if self.blocked_attachments is not None:
            after.append(AttachmentStage(AttachmentRules(tuple(self.blocked_attachments))))
        base = dataclasses.replace(self, before_relay=tuple(before) + self.before_relay,
                                   after_relay=self.after_relay + tuple(after))
        chain = ReceivingRole.build_chain(base)
        # Relaying only after AUTH: an unauthenticated attempt learns it must
        # authenticate (RFC 4954 §6), not just that relaying is denied.
        auth = self.allow_auth_relay and self.users is not None
        chain.stages = [dataclasses.replace(s, auth_required=auth)
                        if isinstance(s, RelayControl) else s for s in chain.stages]
        return chain

    def build_server(self, ctx: HostContext, sink: object,  # type: ignore[override]
                     release: object | None = None, grants: Any = None) -> SmtpServer:
        """The SMTP server on ``ctx``'s host, reading ``grants``."""
        from mta.smtp.server import SmtpServer
        return SmtpServer(ctx, self.build_chain(grants, ctx.now), sink,  # type: ignore[arg-type]
                          self.server_config(), release=release)  # type: ignore[arg-type]

    def build_pop3(self, ctx: HostContext, store: Any, grants: Any) -> Any:
        """The POP3 server over ``store`` (a MailboxStore) whose logins
        fill ``grants``; None when POP-before-SMTP is off."""
        if self.pop_users is None:
            return None
        from mta.pop3.maildrop import MailboxStoreDrops
        from mta.pop3.server import Pop3Server
        return Pop3Server(ctx, MailboxStoreDrops(store), dict(self.pop_users),
                          mailboxes=dict(self.pop_mailboxes or {}), port=self.pop_port,
                          on_login=grants.on_login)


