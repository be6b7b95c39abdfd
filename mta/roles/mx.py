"""The roles of the hosted-domain and dial-up services: primary and backup
MX, queueing server, customer mail server, smart host, ISP outbound relay."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Mapping

from mta.roles.base import need, parse_addresses, ReceivingRole

if TYPE_CHECKING:
    from mta.context import HostContext


@dataclass(frozen=True)
class PrimaryMx(ReceivingRole):
    """The preferred MX of its ``local_domains``."""

    role: ClassVar[str] = "primary_mx"

    def __post_init__(self) -> None:
        super().__post_init__()
        need(bool(self.local_domains), self.role, "local_domains", "a primary MX needs its domains")


@dataclass(frozen=True)
class BackupMx(ReceivingRole):
    """A secondary MX: relays for ``relay_domains`` (to
    ``relay_recipients`` only, when given) and for nobody else."""

    role: ClassVar[str] = "backup_mx"

    def __post_init__(self) -> None:
        super().__post_init__()
        need(bool(self.relay_domains), self.role, "relay_domains",
              "a backup MX needs the domains it backs up")


@dataclass(frozen=True)
class QueueingServer(ReceivingRole):
    """Holds mail for dial-up customers' ``relay_domains`` until ETRN,
    finger or a probe releases it.  ETRN and finger are on by default."""

    etrn: bool = True
    finger: bool = True
    role: ClassVar[str] = "queueing_server"

    def __post_init__(self) -> None:
        super().__post_init__()
        need(bool(self.relay_domains), self.role, "relay_domains",
              "a queueing server needs the customers' domains it holds mail for")


@dataclass(frozen=True)
class CustomerMailServer(ReceivingRole):
    """Final delivery into ``mailboxes`` (addresses in ``local_domains``).

    ``allowlist`` (the feed's address and the LAN; loopback is always
    allowed) locks the server down to its feed (seed 001)."""

    mailboxes: tuple[str, ...] = ()
    aliases: Mapping[str, str] | None = None
    role: ClassVar[str] = "customer_mail_server"

    def __post_init__(self) -> None:
        super().__post_init__()
        r = self.role
        need(bool(self.local_domains), r, "local_domains", "needs the domains it delivers")
        need(bool(self.mailboxes), r, "mailboxes", "needs at least one mailbox")
        boxes = parse_addresses(r, "mailboxes", self.mailboxes) or frozenset()
        local = {d.lower() for d in self.local_domains}
        for m in sorted(boxes):
            need(m.rpartition("@")[2] in local, r, "mailboxes",
                  f"{m} is not in local_domains")
        for src, dst in sorted((self.aliases or {}).items()):
            need(dst.lower() in boxes, r, "aliases", f"{src} -> {dst}: no such mailbox")
        if self.local_recipients is None:
            # Only real mailboxes (and aliases) are valid recipients.
            object.__setattr__(self, "local_recipients", tuple(sorted(
                boxes | {a.lower() for a in (self.aliases or {}) if "@" in a})))

    def build_store(self, ctx: HostContext, maildir=None):
        """The MailboxStore this server delivers into (on disk too, given a
        :class:`~mta.maildir.Maildir`)."""
        from mta.mailbox import MailboxStore
        return MailboxStore(ctx, self.mailboxes, aliases=dict(self.aliases or {}), maildir=maildir)


@dataclass(frozen=True)
class SmartHost(ReceivingRole):
    """Relays for ``trusted_networks`` (its customers) or after AUTH;
    refuses HELO names that are not fully qualified."""

    require_fqdn_helo: bool = True
    role: ClassVar[str] = "smart_host"

    def __post_init__(self) -> None:
        super().__post_init__()
        need(bool(self.trusted_networks) or self.allow_auth_relay, self.role,
              "trusted_networks", "a smart host relays for customer networks or after AUTH")


@dataclass(frozen=True)
class IspOutbound(ReceivingRole):
    """The ISP's outbound server: relays for subscribers
    (``trusted_networks``) except customer-run mail servers
    (``untrusted_networks``), which must deliver straight to MX hosts."""

    role: ClassVar[str] = "isp_outbound"

    def __post_init__(self) -> None:
        super().__post_init__()
        need(bool(self.trusted_networks), self.role, "trusted_networks",
              "needs the subscriber networks it relays for")
