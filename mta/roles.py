"""Receiving-half role configurations: validated dataclasses that build a
server.

Each role is a frozen dataclass whose fields are the settings an operator
would write (domains, networks, limits); ``__post_init__`` refuses settings
that cannot work (RoleError, naming the field).  ``build_chain`` turns a role
into its policy chain, always in the same stage order::

    allow-list, block list, DNSBL        (connect, or RCPT for the last two)
    HELO check                           (HELO/EHLO)
    size limit                           (MAIL, DATA)
    before_relay stages                  (later: POP-before-SMTP, AUTH rules)
    relay control                        (RCPT)
    after_relay stages                   (later: greylisting, virus, spam...)
    recipient limit                      (RCPT, last: counts only accepted)

The roles (seed documents 000-004):

* :class:`PrimaryMx`: final destination (or gateway) for its local domains.
* :class:`BackupMx`: secondary MX, relays for the domains it backs up, only
  to known recipients when a list is given (Postfix relay_recipient_maps).
* :class:`QueueingServer`: holds mail for dial-up customers' domains and
  releases it on ETRN or finger.
* :class:`CustomerMailServer`: final delivery into mailboxes; may be
  locked down to its feed, loopback and LAN (``feed-lockdown``).
* :class:`SmartHost`: relays for its customers' networks or after AUTH;
  requires fully qualified HELO names.
* :class:`IspOutbound`: relays for subscribers, refuses customer-run mail
  servers inside its address space.
* :class:`RestrictedRelay`: the restricted relays of seeds 002/003: nobody
  relays by default; SMTP AUTH (530 5.7.0 until authenticated) or a POP3
  login (POP-before-SMTP, its own POP3 server) opens it; MAIL FROM may be
  tied to the user's domains; blocked attachments refused at end of DATA.
* :class:`SmtpFeed`: the provider's feed for its clients' domains:
  greylisting at RCPT, then after queueing a virus scan (not optional) and
  spam levels (off by default), then delivery to the client's server.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping

from mta.addresses import valid_domain
from mta.context import HostContext
from mta.ondemand.etrn import STYLES, EtrnPolicy
from mta.ondemand.finger import FINGER_PORT, FingerListener
from mta.policy import (ClientBlockList, ConnectAllowList, DnsblStage, DnsblZone,
                        HeloFqdnStage, Networks, Phase, PolicyChain, RecipientLimit,
                        RelayControl, SizeLimit, Stage)
from mta.policy.greylist import GreylistConfig
from mta.policy.recipients import MODES, POSTFIX_RECIPIENT_LIMIT
from mta.policy.size import POSTFIX_MESSAGE_SIZE_LIMIT, RFC_MIN_MESSAGE_SIZE
from mta.smtp.config import ServerConfig
from mta.smtp.server import SmtpServer


class RoleError(ValueError):
    """A role configuration that cannot work; the message names the field."""


def _need(cond: bool, role: str, fieldname: str, msg: str) -> None:
    if not cond:
        raise RoleError(f"{role}.{fieldname}: {msg}")


def _domain_list(role: str, name: str, domains: tuple[str, ...]) -> None:
    _need(isinstance(domains, tuple), role, name, "must be a tuple of domains")
    for d in domains:
        bare = d[1:] if d.startswith(".") else d
        _need(valid_domain(bare.lower()), role, name, f"{d!r} is not a domain")


def _networks(role: str, name: str, entries: tuple[str, ...] | None) -> Networks:
    try:
        return Networks(entries or ())
    except ValueError as exc:
        raise RoleError(f"{role}.{name}: {exc}") from None


def _addresses(role: str, name: str, entries: tuple[str, ...] | None) -> frozenset[str] | None:
    if entries is None:
        return None
    out = set()
    for e in entries:
        local, at, dom = e.rpartition("@")
        _need(bool(at) and valid_domain(dom.lower()), role, name, f"{e!r} is not an address")
        out.add(e.lower())
    return frozenset(out)


@dataclass(frozen=True)
class ReceivingRole:
    """Settings shared by every receiving role (see the module docstring).

    Defaults are Postfix's: ``message_size_limit`` 10240000,
    ``smtpd_recipient_limit`` 1000, empty ``relay_domains`` and
    ``mynetworks`` (nobody may relay), ETRN off.
    """

    hostname: str
    banner: str = ""
    port: int = 25
    local_domains: tuple[str, ...] = ()
    local_recipients: tuple[str, ...] | None = None
    relay_domains: tuple[str, ...] = ()
    relay_recipients: tuple[str, ...] | None = None
    trusted_networks: tuple[str, ...] = ()
    untrusted_networks: tuple[str, ...] = ()
    users: Mapping[str, str] | None = None
    allow_auth_relay: bool = False
    allowlist: tuple[str, ...] | None = None
    allowlist_loopback: bool = True
    blocklist: tuple[str, ...] = ()
    dnsbl: tuple[DnsblZone, ...] = ()
    client_checks_at: str = "rcpt"
    require_fqdn_helo: bool = False
    max_message_size: int = POSTFIX_MESSAGE_SIZE_LIMIT
    max_recipients: int = POSTFIX_RECIPIENT_LIMIT
    recipient_limit_mode: str = "conformant"
    etrn: bool = False
    etrn_domains: tuple[str, ...] | None = None
    etrn_clients: tuple[str, ...] | None = None
    etrn_style: str = "rfc1985"
    finger: bool = False
    finger_port: int = FINGER_PORT
    idle_timeout: float = 300.0
    hard_error_limit: int = 20
    command_size_limit: int = 512
    before_relay: tuple[Stage, ...] = ()
    after_relay: tuple[Stage, ...] = ()

    role: ClassVar[str] = "receiving"

    def __post_init__(self) -> None:
        r = self.role
        _need(valid_domain(self.hostname.lower()), r, "hostname", "must be a host name")
        _need(0 < self.port < 65536, r, "port", "must be a TCP port")
        for name in ("local_domains", "relay_domains"):
            _domain_list(r, name, getattr(self, name))
        both = {d.lower() for d in self.local_domains} & {d.lower() for d in self.relay_domains}
        _need(not both, r, "relay_domains",
              f"{sorted(both)} also in local_domains (a domain is final here or relayed, not both)")
        for name in ("trusted_networks", "untrusted_networks", "allowlist", "blocklist",
                     "etrn_clients"):
            _networks(r, name, getattr(self, name))
        for name in ("local_recipients", "relay_recipients"):
            _addresses(r, name, getattr(self, name))
        _need(self.client_checks_at in ("connect", "rcpt"), r, "client_checks_at",
              "must be 'connect' or 'rcpt'")
        _need(self.max_message_size >= RFC_MIN_MESSAGE_SIZE, r, "max_message_size",
              "RFC 5321 §4.5.3.1.7: at least 64K must be accepted")
        _need(self.max_recipients >= 1, r, "max_recipients", "must be at least 1")
        _need(self.recipient_limit_mode in MODES, r, "recipient_limit_mode",
              f"must be one of {MODES}")
        _need(self.etrn_style in STYLES, r, "etrn_style", f"must be one of {STYLES}")
        _need(not self.allow_auth_relay or self.users is not None, r, "users",
              "allow_auth_relay needs users to authenticate")
        _need(self.idle_timeout > 0, r, "idle_timeout", "must be positive")
        _need(0 < self.finger_port < 65536, r, "finger_port", "must be a TCP port")
        if self.etrn_domains is not None:
            _domain_list(r, "etrn_domains", self.etrn_domains)
        for name in ("before_relay", "after_relay"):
            for s in getattr(self, name):
                _need(isinstance(s, Stage), r, name, f"{s!r} is not a policy Stage")

    # -- building -------------------------------------------------------
    def build_chain(self) -> PolicyChain:
        """The policy chain of this role (order in the module docstring)."""
        at = Phase.CONNECT if self.client_checks_at == "connect" else Phase.RCPT
        trusted = Networks(self.trusted_networks)
        stages: list[Stage] = []
        if self.allowlist is not None:
            stages.append(ConnectAllowList(Networks(self.allowlist),
                                           include_loopback=self.allowlist_loopback))
        if self.blocklist:
            stages.append(ClientBlockList(Networks(self.blocklist), phase=at))
        if self.dnsbl:
            stages.append(DnsblStage(tuple(self.dnsbl), phase=at, exempt=trusted))
        if self.require_fqdn_helo:
            stages.append(HeloFqdnStage())
        stages.append(SizeLimit(self.max_message_size))
        stages.extend(self.before_relay)
        stages.append(RelayControl(
            local_domains=tuple(d.lower() for d in self.local_domains),
            local_recipients=_addresses(self.role, "local_recipients", self.local_recipients),
            relay_domains=tuple(d.lower() for d in self.relay_domains),
            relay_recipients=_addresses(self.role, "relay_recipients", self.relay_recipients),
            trusted=trusted, untrusted=Networks(self.untrusted_networks),
            allow_authenticated=self.allow_auth_relay))
        stages.extend(self.after_relay)
        stages.append(RecipientLimit(self.max_recipients, self.recipient_limit_mode))
        return PolicyChain(stages)

    def etrn_policy(self) -> EtrnPolicy:
        domains = self.etrn_domains
        if domains is None:
            domains = tuple(self.relay_domains)   # Postfix: fast_flush_domains = $relay_domains
        clients = Networks(self.etrn_clients) if self.etrn_clients is not None else None
        return EtrnPolicy(enabled=self.etrn, domains=domains, clients=clients,
                          style=self.etrn_style)

    def server_config(self) -> ServerConfig:
        return ServerConfig(
            banner=self.banner, idle_timeout=self.idle_timeout,
            command_size_limit=self.command_size_limit,
            hard_error_limit=self.hard_error_limit,
            users=dict(self.users) if self.users is not None else None,
            etrn=self.etrn_policy(), port=self.port)

    def build_server(self, ctx: HostContext, sink: object,
                     release: object | None = None) -> SmtpServer:
        """The SMTP server of this role on ``ctx``'s host."""
        return SmtpServer(ctx, self.build_chain(), sink, self.server_config(),  # type: ignore[arg-type]
                          release=release)  # type: ignore[arg-type]

    def build_finger(self, ctx: HostContext, release: object) -> FingerListener | None:
        """The SMTP-on-Demand finger listener, if this role runs one."""
        if not self.finger:
            return None
        return FingerListener(ctx, release, port=self.finger_port,
                              domains=self.etrn_policy().domains)


@dataclass(frozen=True)
class PrimaryMx(ReceivingRole):
    """The preferred MX of its ``local_domains``."""

    role: ClassVar[str] = "primary_mx"

    def __post_init__(self) -> None:
        super().__post_init__()
        _need(bool(self.local_domains), self.role, "local_domains", "a primary MX needs its domains")


@dataclass(frozen=True)
class BackupMx(ReceivingRole):
    """A secondary MX: relays for ``relay_domains`` (to
    ``relay_recipients`` only, when given) and for nobody else."""

    role: ClassVar[str] = "backup_mx"

    def __post_init__(self) -> None:
        super().__post_init__()
        _need(bool(self.relay_domains), self.role, "relay_domains",
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
        _need(bool(self.relay_domains), self.role, "relay_domains",
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
        _need(bool(self.local_domains), r, "local_domains", "needs the domains it delivers")
        _need(bool(self.mailboxes), r, "mailboxes", "needs at least one mailbox")
        boxes = _addresses(r, "mailboxes", self.mailboxes) or frozenset()
        local = {d.lower() for d in self.local_domains}
        for m in sorted(boxes):
            _need(m.rpartition("@")[2] in local, r, "mailboxes",
                  f"{m} is not in local_domains")
        for src, dst in sorted((self.aliases or {}).items()):
            _need(dst.lower() in boxes, r, "aliases", f"{src} -> {dst}: no such mailbox")
        if self.local_recipients is None:
            # Only real mailboxes (and aliases) are valid recipients.
            object.__setattr__(self, "local_recipients", tuple(sorted(
                boxes | {a.lower() for a in (self.aliases or {}) if "@" in a})))

    def build_store(self, ctx: HostContext):
        """The MailboxStore this server delivers into."""
        from mta.mailbox import MailboxStore
        return MailboxStore(ctx, self.mailboxes, aliases=dict(self.aliases or {}))


@dataclass(frozen=True)
class SmartHost(ReceivingRole):
    """Relays for ``trusted_networks`` (its customers) or after AUTH;
    refuses HELO names that are not fully qualified."""

    require_fqdn_helo: bool = True
    role: ClassVar[str] = "smart_host"

    def __post_init__(self) -> None:
        super().__post_init__()
        _need(bool(self.trusted_networks) or self.allow_auth_relay, self.role,
              "trusted_networks", "a smart host relays for customer networks or after AUTH")


@dataclass(frozen=True)
class IspOutbound(ReceivingRole):
    """The ISP's outbound server: relays for subscribers
    (``trusted_networks``) except customer-run mail servers
    (``untrusted_networks``), which must deliver straight to MX hosts."""

    role: ClassVar[str] = "isp_outbound"

    def __post_init__(self) -> None:
        super().__post_init__()
        _need(bool(self.trusted_networks), self.role, "trusted_networks",
              "needs the subscriber networks it relays for")


# -- the SMTP feed (seed 001) -------------------------------------------

#: Seed 001's words, quoted when a feed is configured without its virus scan.
VIRUS_SCAN_NOT_OPTIONAL = ('the SMTP feed always scans for viruses (seed 001: "It is then '
                           'scanned for viruses, and deleted if needed. This is not optional.")')
VIRUS_SCANNERS = ("builtin", "clamd")
SPAM_SCORERS = ("builtin", "spamd")


def _host_port(role: str, name: str, value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    _need(bool(host) and port.isdigit() and 0 < int(port) < 65536, role, name,
          f"expected host:port, got {value!r}")
    return host, int(port)


@dataclass(frozen=True)
class SmtpFeed(BackupMx):
    """The provider's SMTP feed: the MX of its clients' ``relay_domains``.

    ``greylisting``: a :class:`~mta.policy.greylist.GreylistConfig`
    (postgrey's defaults; on by default, None switches it off), answered at
    RCPT after relay control (it must answer in the SMTP dialogue, and after
    every stage that refuses for good).  After queueing, the queue runs
    :meth:`build_filters`: the virus scan (``virus_scan`` must stay True:
    the seed says it is not optional) and the spam levels ``spam`` (off by
    default).  ``virus_scanner``/``spam_scorer`` choose the built-in
    engines (the simulation) or real ``clamd``/``spamd`` at
    ``clamd_address``/``spamd_address`` (live only: the simulated loop
    cannot reach a daemon).  ``filter_costs`` overrides
    :data:`mta.feed.chain.DEFAULT_COSTS` per stage; ``modelled_costs``
    False drops the modelled service times (live).
    """

    greylisting: GreylistConfig | None = field(default_factory=GreylistConfig)
    virus_scan: bool = True
    spam: object | None = None
    virus_scanner: str = "builtin"
    spam_scorer: str = "builtin"
    clamd_address: str = "127.0.0.1:3310"
    spamd_address: str = "127.0.0.1:783"
    filter_costs: Mapping[str, object] | None = None
    modelled_costs: bool = True
    role: ClassVar[str] = "smtp_feed"

    def __post_init__(self) -> None:
        from mta.filters.levels import SpamSettings

        super().__post_init__()
        r = self.role
        _need(self.virus_scan is True, r, "virus_scan", VIRUS_SCAN_NOT_OPTIONAL)
        _need(self.greylisting is None or isinstance(self.greylisting, GreylistConfig), r,
              "greylisting", "must be a GreylistConfig or None (off)")
        if self.spam is None:
            object.__setattr__(self, "spam", SpamSettings())
        _need(isinstance(self.spam, SpamSettings), r, "spam", "must be SpamSettings")
        _need(self.virus_scanner in VIRUS_SCANNERS, r, "virus_scanner",
              f"must be one of {VIRUS_SCANNERS}")
        _need(self.spam_scorer in SPAM_SCORERS, r, "spam_scorer", f"must be one of {SPAM_SCORERS}")
        _host_port(r, "clamd_address", self.clamd_address)
        _host_port(r, "spamd_address", self.spamd_address)
        from mta.feed.chain import DEFAULT_COSTS, StageCost
        for stage, cost in (self.filter_costs or {}).items():
            _need(stage in DEFAULT_COSTS, r, "filter_costs", f"unknown stage {stage!r}")
            _need(isinstance(cost, StageCost), r, "filter_costs", f"{stage}: must be a StageCost")

    def greylist_stage(self, ctx: HostContext, store: object) -> Stage:
        """The greylisting stage on ``ctx``'s host, remembering in ``store``."""
        from mta.policy.greylist import GreylistStage
        return GreylistStage(store=store, clock=ctx.now, config=self.greylisting,  # type: ignore[arg-type]
                             hostname=self.hostname)

    def build_server(self, ctx: HostContext, sink: object, release: object | None = None,
                     greylist_store: object | None = None) -> SmtpServer:
        """The feed's SMTP server; with greylisting on, its stage remembers
        in ``greylist_store`` (one per host, shared by its ports; a fresh
        memory store when not given)."""
        if self.greylisting is None:
            return super().build_server(ctx, sink, release)
        if greylist_store is None:
            from mta.policy.greylist_store import MemoryGreylistStore
            greylist_store = MemoryGreylistStore()
        stage = self.greylist_stage(ctx, greylist_store)
        role = dataclasses.replace(self, after_relay=tuple(self.after_relay) + (stage,))
        return ReceivingRole.build_server(role, ctx, sink, release)

    def build_filters(self):
        """The post-queue chain (:class:`mta.feed.chain.FeedFilters`) for
        the host's queue (``QueueManager(content_filter=...)``)."""
        from mta.feed.chain import FeedFilters
        if self.virus_scanner == "clamd":
            from mta.filters.clamav import ClamdScanner
            host, port = _host_port(self.role, "clamd_address", self.clamd_address)
            scanner = ClamdScanner(host, port)
        else:
            from mta.filters.virus import BuiltinScanner
            scanner = BuiltinScanner()
        if self.spam_scorer == "spamd":
            from mta.filters.spamd import SpamdScorer
            host, port = _host_port(self.role, "spamd_address", self.spamd_address)
            scorer = SpamdScorer(host, port)
        else:
            from mta.filters.spam import BuiltinScorer
            scorer = BuiltinScorer()
        return FeedFilters(scanner, scorer, self.spam,  # type: ignore[arg-type]
                           costs=dict(self.filter_costs or {}),  # type: ignore[arg-type]
                           modelled=self.modelled_costs)
# -- the restricted relay (seeds 002 and 003) --------------------------------

@dataclass(frozen=True)
class RestrictedRelay(ReceivingRole):
    """A relay for customers only (see the module docstring).

    ``users`` (SMTP AUTH, PLAIN and LOGIN) with ``allow_auth_relay``:
    relaying after AUTH, ``530 5.7.0 Authentication required`` before.
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
        _need(self.refuse_at in REFUSE_AT, r, "refuse_at", f"must be one of {REFUSE_AT}")
        _need(self.pop_window > 0, r, "pop_window", "must be positive")
        _need(0 < self.pop_port < 65536, r, "pop_port", "must be a TCP port")
        if self.pop_users is not None:
            _need(bool(self.pop_users), r, "pop_users", "needs at least one POP3 account")
            _need(not (self.users and self.refuse_at == "connect"), r, "refuse_at",
                  "a 554 greeting leaves AUTH users no way in: refuse at 'rcpt' when both "
                  "AUTH and POP-before-SMTP are on")
            unknown = sorted(set(self.pop_mailboxes or {}) - set(self.pop_users))
            _need(not unknown, r, "pop_mailboxes", f"{unknown} have no POP3 password")
        if self.sender_domains is not None:
            known = set(self.users or {}) | set(self.pop_users or {})
            _need(bool(known), r, "sender_domains",
                  "the rule needs AUTH users or POP3 accounts to tie senders to")
            for user, domains in sorted(self.sender_domains.items()):
                _need(user in known, r, "sender_domains", f"{user!r} is no AUTH or POP3 user")
                _domain_list(r, "sender_domains", tuple(domains))
        if self.blocked_attachments is not None:
            try:
                AttachmentRules(tuple(self.blocked_attachments))
            except ValueError as exc:
                raise RoleError(f"{r}.blocked_attachments: {exc}") from None

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
        from mta.policy.relay_access import PopBeforeSmtp, SenderAffiliation
        before: list[Stage] = []
        if self.pop_users is not None:
            if grants is None or clock is None:
                raise RoleError(f"{self.role}.pop_users: the chain needs the grant table "
                                "and the host's clock (build_grants, ctx.now)")
            before.append(PopBeforeSmtp(grants, clock, refuse_at=self.refuse_at,
                                        exempt=Networks(self.trusted_networks)))
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


ROLES: dict[str, type[ReceivingRole]] = {
    cls.role: cls for cls in (PrimaryMx, BackupMx, QueueingServer, CustomerMailServer,
                              SmartHost, IspOutbound, SmtpFeed, RestrictedRelay)
}
