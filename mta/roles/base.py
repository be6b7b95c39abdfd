"""What every receiving role is: a validated configuration that builds its
policy chain and server (see :mod:`mta.roles` for the roles).

A role is configuration first: validating a scenario builds every role to
let it refuse a setting, and that must not load the servers (aiosmtpd,
asyncio, the event classes).  So the servers, the finger listener and the
host context are imported by the methods that build them, and
``tests/test_cli_startup.py`` holds ``mxsim validate`` to that.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Mapping

from mta.addresses import valid_domain
from mta.ondemand.etrn import STYLES, EtrnPolicy
from mta.ondemand import FINGER_PORT
from mta.policy import (ClientBlockList, ConnectAllowList, DnsblStage, DnsblZone,
                        HeloFqdnStage, Networks, Phase, PolicyChain, RecipientLimit,
                        RelayControl, SizeLimit, Stage)
from mta.policy.recipients import MODES, POSTFIX_RECIPIENT_LIMIT
from mta.policy.size import POSTFIX_MESSAGE_SIZE_LIMIT, RFC_MIN_MESSAGE_SIZE

if TYPE_CHECKING:
    from mta.context import HostContext
    from mta.ondemand.finger import FingerListener
    from mta.smtp.config import ServerConfig
    from mta.smtp.server import SmtpServer


class RoleError(ValueError):
    """A role configuration that cannot work; the message names the field."""


def need(cond: bool, role: str, fieldname: str, msg: str) -> None:
    if not cond:
        raise RoleError(f"{role}.{fieldname}: {msg}")


def check_domains(role: str, name: str, domains: tuple[str, ...]) -> None:
    need(isinstance(domains, tuple), role, name, "must be a tuple of domains")
    for d in domains:
        bare = d[1:] if d.startswith(".") else d
        need(valid_domain(bare.lower()), role, name, f"{d!r} is not a domain")


def parse_networks(role: str, name: str, entries: tuple[str, ...] | None) -> Networks:
    try:
        return Networks(entries or ())
    except ValueError as exc:
        raise RoleError(f"{role}.{name}: {exc}") from None


def parse_addresses(role: str, name: str, entries: tuple[str, ...] | None) -> frozenset[str] | None:
    if entries is None:
        return None
    out = set()
    for e in entries:
        local, at, dom = e.rpartition("@")
        need(bool(at) and valid_domain(dom.lower()), role, name, f"{e!r} is not an address")
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
        need(valid_domain(self.hostname.lower()), r, "hostname", "must be a host name")
        need(0 < self.port < 65536, r, "port", "must be a TCP port")
        for name in ("local_domains", "relay_domains"):
            check_domains(r, name, getattr(self, name))
        both = {d.lower() for d in self.local_domains} & {d.lower() for d in self.relay_domains}
        need(not both, r, "relay_domains",
              f"{sorted(both)} also in local_domains (a domain is final here or relayed, not both)")
        for name in ("trusted_networks", "untrusted_networks", "allowlist", "blocklist",
                     "etrn_clients"):
            parse_networks(r, name, getattr(self, name))
        for name in ("local_recipients", "relay_recipients"):
            parse_addresses(r, name, getattr(self, name))
        need(self.client_checks_at in ("connect", "rcpt"), r, "client_checks_at",
              "must be 'connect' or 'rcpt'")
        need(self.max_message_size >= RFC_MIN_MESSAGE_SIZE, r, "max_message_size",
              "RFC 5321 §4.5.3.1.7: at least 64K must be accepted")
        need(self.max_recipients >= 1, r, "max_recipients", "must be at least 1")
        need(self.recipient_limit_mode in MODES, r, "recipient_limit_mode",
              f"must be one of {MODES}")
        need(self.etrn_style in STYLES, r, "etrn_style", f"must be one of {STYLES}")
        need(not self.allow_auth_relay or self.users is not None, r, "users",
              "allow_auth_relay needs users to authenticate")
        need(self.idle_timeout > 0, r, "idle_timeout", "must be positive")
        need(0 < self.finger_port < 65536, r, "finger_port", "must be a TCP port")
        if self.etrn_domains is not None:
            check_domains(r, "etrn_domains", self.etrn_domains)
        for name in ("before_relay", "after_relay"):
            for s in getattr(self, name):
                need(isinstance(s, Stage), r, name, f"{s!r} is not a policy Stage")

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
            local_recipients=parse_addresses(self.role, "local_recipients", self.local_recipients),
            relay_domains=tuple(d.lower() for d in self.relay_domains),
            relay_recipients=parse_addresses(self.role, "relay_recipients", self.relay_recipients),
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
        from mta.smtp.config import ServerConfig
        return ServerConfig(
            banner=self.banner, idle_timeout=self.idle_timeout,
            command_size_limit=self.command_size_limit,
            hard_error_limit=self.hard_error_limit,
            users=dict(self.users) if self.users is not None else None,
            etrn=self.etrn_policy(), port=self.port)

    def build_server(self, ctx: HostContext, sink: object,
                     release: object | None = None) -> SmtpServer:
        """The SMTP server of this role on ``ctx``'s host."""
        from mta.smtp.server import SmtpServer
        return SmtpServer(ctx, self.build_chain(), sink, self.server_config(),  # type: ignore[arg-type]
                          release=release)  # type: ignore[arg-type]

    def build_finger(self, ctx: HostContext, release: object) -> FingerListener | None:
        """The SMTP-on-Demand finger listener, if this role runs one."""
        if not self.finger:
            return None
        from mta.ondemand.finger import FingerListener
        return FingerListener(ctx, release, port=self.finger_port,
                              domains=self.etrn_policy().domains)
