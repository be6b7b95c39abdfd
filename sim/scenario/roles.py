"""Mail roles placed on hosts, with their configuration.

Every role names its ``host`` and carries the receiving policy shared by all
SMTP servers (:class:`Policy` fields: trusted networks, allow-list, block
lists, DNSBL zones, limits, greylisting) and the queue settings of anything
that forwards mail (retry preset, per-domain lifetimes, routes).  Each kind
adds what is particular to it.  ``role`` selects the kind::

    primary-mx, secondary-mx, queueing-server, customer-server,
    smtp-feed, smart-host, isp-outbound, relay
"""
from __future__ import annotations

import re
from typing import Annotated, Literal, Union

from pydantic import AfterValidator, Field, model_validator

from sim.scenario.types import (DomainName, Duration, HostName, IPv4, MailAddress, Network,
                                one_or_many,
                                Size, Strict, shorthand)

RETRY_PRESETS = ("postfix", "exim", "sendmail", "rfc5321", "custom")


class Retry(Strict):
    """When a queue retries and when it gives up.

    ``preset`` names a real MTA's default schedule (mta/retry/presets.py: Postfix
    300..4000 s backoff and 5 d lifetime; Exim's default retry rule, 4 d;
    Sendmail's 30 min queue runs and 5 d; RFC 5321's 30 min and 5 d; or
    ``custom``); the other keys override parts of it, where the preset has
    them (Exim's and Sendmail's backoffs come from their rules).
    ``lifetimes`` sets the queue lifetime per destination domain (Exim's
    ``dialup.example * F,2d,1h``).
    """

    preset: Literal[RETRY_PRESETS] = "postfix"  # type: ignore[valid-type]
    lifetime: Duration | None = None
    min_backoff: Duration | None = None
    max_backoff: Duration | None = None
    factor: float | None = Field(default=None, ge=1)
    delay_warning: Duration | None = None
    lifetimes: dict[DomainName, Duration] = {}

    def overrides(self) -> dict[str, float]:
        """The keyword overrides for ``mta.retry.presets.preset``."""
        keys = ("lifetime", "min_backoff", "max_backoff", "factor", "delay_warning")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}

    @model_validator(mode="after")
    def _buildable(self) -> "Retry":
        from mta.retry.presets import preset, preset_settings   # the schedule says what it takes

        keys = ("lifetime", "min_backoff", "max_backoff", "factor", "delay_warning")
        takes = [k for k in keys if k in preset_settings(self.preset)]
        wrong = [k for k in self.overrides() if k not in takes]
        if wrong:
            raise ValueError(f"the {self.preset} preset has no {', '.join(map(repr, wrong))} "
                             f"setting; with {self.preset} a scenario may set "
                             f"{', '.join(takes + ['lifetimes'])}")
        try:
            preset(self.preset, **self.overrides())
        except (ValueError, TypeError) as exc:
            raise ValueError(f"expected settings the {self.preset} preset accepts: {exc}") from None
        return self


def _retry_shorthand(value: object) -> object:
    """``retry: exim`` means ``{preset: exim}``."""
    return {"preset": value} if isinstance(value, str) else value


RetrySetting = Annotated[Retry, shorthand(_retry_shorthand, Literal[RETRY_PRESETS], Retry)]


class Dnsbl(Strict):
    """A DNS block list (RFC 5782).  ``codes``: the answers that count as
    listed (empty: any 127.0.0.x).  ``fail`` says what happens when the
    list does not answer (a DNS outage): ``open`` accepts, ``closed``
    defers with a 4xx."""

    zone: DomainName
    codes: one_or_many(IPv4) = []
    fail: Literal["open", "closed"] = "open"


def _dnsbl_shorthand(value: object) -> object:
    return {"zone": value} if isinstance(value, str) else value


class RecipientLimit(Strict):
    """At most ``limit`` recipients per message.  ``conformant`` answers
    452 4.5.3 to the rest (the sender retries them); ``documented`` accepts
    them and relays only the first ``limit`` (silent loss, as the provider's
    page describes)."""

    limit: int = Field(ge=1)
    behaviour: Literal["conformant", "documented"] = "conformant"


def _limit_shorthand(value: object) -> object:
    return {"limit": value} if isinstance(value, int) and not isinstance(value, bool) else value


class Greylisting(Strict):
    """RFC 6647 greylisting with postgrey's defaults (mta.policy.greylist):
    300 s delay, 2 d retry window, entries expire 35 d unseen, a client is
    auto-whitelisted after 5 passes (0: never), triplets by /24 (IPv4)."""

    enabled: bool = True
    delay: Duration = 300.0
    retry_window: Duration = 2 * 86400.0
    max_age: Duration = 35 * 86400.0
    auto_whitelist_clients: int = Field(default=5, ge=0)
    ipv4_cidr: int = Field(default=24, ge=0, le=32)
    whitelist_clients: one_or_many(Network) = []


class Etrn(Strict):
    """ETRN (RFC 1985) on this server; ``allowed`` empty means any client.
    ``style`` picks the reply: ``rfc1985`` (251/252/253 with counts),
    ``postfix`` (always "250 Queuing started") or ``queue-run`` ("250 OK,
    queue -R 'domain' started", as the dial-up service description shows)."""

    enabled: bool = True
    allowed: one_or_many(Network) = []
    style: Literal["rfc1985", "postfix", "queue-run"] = "rfc1985"


class Finger(Strict):
    """SMTP-on-Demand: a finger query for a domain (port 79) releases it."""

    enabled: bool = True
    port: int = Field(default=79, ge=1, le=65535)


class Probe(Strict):
    """Probe the held domains' delivery host every ``interval`` and deliver
    when it answers, with no trigger needed.  ``target`` defaults to the
    domain's route (``routes``)."""

    target: HostName | None = None
    interval: Duration = 900.0
    port: int = Field(default=25, ge=1, le=65535)
    timeout: Duration = 30.0


_NEXTHOP = re.compile(r"^\[?[A-Za-z0-9_.-]+\]?(:\d{1,5})?$")


def _nexthop(value: str) -> str:
    if not _NEXTHOP.match(value):
        raise ValueError("expected a next hop such as mail.example.net, "
                         f"[mail.example.net] (no MX lookup) or host:port, got {value!r}")
    return value


Nexthop = Annotated[str, AfterValidator(_nexthop)]


class RoleBase(Strict):
    """Fields every role has: where it runs, who may use it, what it blocks."""

    host: HostName
    ports: one_or_many(int) = [25]
    trusted_networks: one_or_many(Network) = Field(
        default=[], description="clients that may relay through this role (mynetworks)")
    allow_list: one_or_many(Network) | None = Field(
        default=None, description="when given, only these clients may connect at all "
                                  "(a server locked down to its feed and LAN); loopback always")
    blocklist: one_or_many(Network) = Field(
        default=[], description="client addresses refused (IP-based blocking)")
    dnsbl: list[Annotated[Dnsbl, shorthand(_dnsbl_shorthand, DomainName, Dnsbl)]] = []
    size_limit: Size | None = None
    recipient_limit: Annotated[RecipientLimit | None,
                               shorthand(_limit_shorthand, int, RecipientLimit, None)] = None
    greylisting: Greylisting | None = None
    idle_timeout: Duration | None = Field(
        default=None, gt=0, description="seconds a client may stay silent, per command and "
                                        "per DATA block, before 421 4.4.2 (Postfix's 300 s)")
    retry: RetrySetting = Retry()
    routes: dict[DomainName, Nexthop] = Field(
        default={}, description="destination domain -> next hop, instead of MX lookup")

    def host_references(self) -> list[tuple[tuple, str]]:
        """(key path, host name) pairs that must name hosts of the scenario."""
        return []


class PrimaryMx(RoleBase):
    """Final destination for ``local_domains``; mailboxes live here."""

    role: Literal["primary-mx"]
    local_domains: one_or_many(DomainName) = Field(min_length=1)
    valid_recipients: list[MailAddress] | None = Field(
        default=None, description="accepted local addresses; absent means any")


class Exchanger(RoleBase):
    """A role that stores mail for other domains and can release it."""

    relay_domains: one_or_many(DomainName) = Field(min_length=1)
    valid_recipients: list[MailAddress] | None = Field(
        default=None, description="relay_recipient_maps: absent means any address")
    held_domains: one_or_many(DomainName) = Field(
        default=[], description="domains kept until ETRN, finger or a probe releases them")
    etrn: Etrn | None = None
    finger: Finger | None = None
    probe: Probe | None = None

    def held(self) -> list[str]:
        """The domains this exchanger keeps until released."""
        return list(self.held_domains)

    def host_references(self) -> list[tuple[tuple, str]]:
        if self.probe is not None and self.probe.target is not None:
            return [(("probe", "target"), self.probe.target)]
        return []


class SecondaryMx(Exchanger):
    """Backup MX: accepts for ``relay_domains`` and forwards to the primary."""

    role: Literal["secondary-mx"]


class QueueingServer(Exchanger):
    """Primary MX on a dedicated link, holding mail for a dial-up delivery
    server until it connects (ETRN) or is probed; ``held_domains`` defaults
    to ``relay_domains``, ETRN defaults to on."""

    role: Literal["queueing-server"]
    etrn: Etrn | None = Etrn()

    def held(self) -> list[str]:
        return list(self.held_domains or self.relay_domains)


class CustomerServer(RoleBase):
    """A customer's own mail server: final delivery into the mailboxes
    ``valid_recipients`` of ``local_domains``; outbound mail goes out
    directly or through ``smart_host``.  ``allow_list`` locks it down to its
    feed and LAN (``feed-lockdown``)."""

    role: Literal["customer-server"]
    local_domains: one_or_many(DomainName) = Field(min_length=1)
    valid_recipients: one_or_many(MailAddress) = Field(
        min_length=1, description="the mailboxes; only these are accepted")
    smart_host: HostName | None = None

    def host_references(self) -> list[tuple[tuple, str]]:
        return [(("smart_host",), self.smart_host)] if self.smart_host else []


SPAM_ACTIONS = ("none", "header", "tag", "subject", "delete")


class SpamAction(Strict):
    """What the feed does for each spam level (seed 001's menu): ``none``,
    ``header`` (the hidden ``X-Spam-Level`` header), ``tag`` or ``subject``
    (the subject text ``"[SPAM: low] "``...), ``delete``."""

    low: Literal[SPAM_ACTIONS] = "header"  # type: ignore[valid-type]
    med: Literal[SPAM_ACTIONS] = "tag"  # type: ignore[valid-type]
    high: Literal[SPAM_ACTIONS] = "delete"  # type: ignore[valid-type]


class SpamThresholds(Strict):
    """Score at or above which each level starts (mta.filters.levels)."""

    low: float = 3.0
    med: float = 5.0
    high: float = 10.0

    @model_validator(mode="after")
    def _rising(self) -> "SpamThresholds":
        if not self.low <= self.med <= self.high:
            raise ValueError("expected thresholds rising from low to med to high")
        return self


class SpamCheck(Strict):
    """Spam levels (off by default).  ``scorer: spamd`` is for live use
    only: the simulated loop cannot reach a spamd daemon."""

    enabled: bool = False
    actions: SpamAction = SpamAction()
    thresholds: SpamThresholds = SpamThresholds()
    scorer: Literal["builtin", "spamd"] = "builtin"


class StageCost(Strict):
    """A filter stage's cost: ``base`` + ``per_kb`` per 1,000 bytes of
    service time on one of ``processes`` scanner processes; a scan longer
    than ``timeout`` is an error (tempfail)."""

    base: Duration
    per_kb: Duration = 0.0
    processes: int = Field(ge=1)
    timeout: Duration = 60.0


class FilterCosts(Strict):
    """Overrides of mta.feed.chain.DEFAULT_COSTS (virus: 1 ms + 0.1 ms/kB on
    10 processes; spam: 150 ms on 2)."""

    virus: StageCost | None = None
    spam: StageCost | None = None


#: The feed's own queue, modelling seed 001's promise: "the message is
#: queued for up to 2 days in our message queue and attempts to redeliver
#: will constantly be made".  Postfix's qmgr with its backoff capped at
#: 30 min: with the 300 s deferred-queue scan no gap between attempts
#: exceeds 35 min (Postfix's own 4000 s cap leaves 4,300 s gaps).
FEED_RETRY = Retry(preset="postfix", max_backoff=30 * 60.0, lifetime=2 * 86400.0)


class SmtpFeed(RoleBase):
    """The provider's feed: virus-scans, greylists, optionally spam-checks,
    queues up to 2 days retrying at least every 35 min (:data:`FEED_RETRY`)
    and delivers to the client's server (``routes``)."""

    role: Literal["smtp-feed"]
    client_domains: one_or_many(DomainName) = Field(min_length=1)
    virus_scan: bool = Field(default=True, description="not optional: false is refused")
    virus_scanner: Literal["builtin", "clamd"] = "builtin"
    greylisting: Greylisting | None = Greylisting()
    spam: SpamCheck = SpamCheck()
    filter_costs: FilterCosts = FilterCosts()
    retry: RetrySetting = FEED_RETRY


class SmartHost(RoleBase):
    """Relays everything from ``trusted_networks`` by MX lookup; refuses
    names that are not fully qualified when ``require_fqdn``."""

    role: Literal["smart-host"]
    trusted_networks: one_or_many(Network) = Field(min_length=1)
    require_fqdn: bool = True


class IspOutbound(RoleBase):
    """The access ISP's outbound server: relays for its dial-up customers
    (``trusted_networks``) but refuses ``refuse_servers`` (customer-run mail
    servers, which must deliver straight to MX hosts)."""

    role: Literal["isp-outbound"]
    refuse_servers: one_or_many(Network) = []


class Auth(Strict):
    """SMTP AUTH (PLAIN and LOGIN) against these accounts."""

    users: dict[str, str] = Field(min_length=1, description="user -> password")


class PopBeforeSmtp(Strict):
    """POP-before-SMTP (seed 002): the relay host runs a POP3 server over its
    mailbox store; a login opens relaying from the client's address for
    ``window`` (renewed by each login).  Everyone else is refused at
    ``refuse_at``: ``connect`` (a 554 greeting, the seed's "will reject all
    connections") or ``rcpt`` (Relay access denied)."""

    window: Duration = 90 * 60.0
    users: dict[str, str] = Field(min_length=1, description="POP3 user -> password")
    mailboxes: dict[str, MailAddress] = Field(
        default={}, description="POP3 user -> mailbox address (default: the user name)")
    port: int = Field(default=110, ge=1, le=65535)
    refuse_at: Literal["connect", "rcpt"] = "connect"


class Relay(RoleBase):
    """A restricted relay (002/003): nobody relays by default; SMTP AUTH or a
    POP3 login opens it; sender domains may be tied to the customer
    (``sender_domains``: a list every account may use, or ``{user: domains}``);
    ``blocked_attachments`` are refused at end of DATA."""

    role: Literal["relay"]
    auth: Auth | None = None
    pop_before_smtp: PopBeforeSmtp | None = None
    sender_domains: Union[dict[str, one_or_many(DomainName)], one_or_many(DomainName)] = Field(
        default=[], description="MAIL FROM domains allowed: for every account, or per user")
    blocked_attachments: list[str] = Field(
        default=[], description="attachment extensions refused, e.g. [pif, bat, exe, scr]")


Role = Annotated[
    Union[PrimaryMx, SecondaryMx, QueueingServer, CustomerServer, SmtpFeed, SmartHost,
          IspOutbound, Relay],
    Field(discriminator="role"),
]

ROLE_KINDS = ("primary-mx", "secondary-mx", "queueing-server", "customer-server",
              "smtp-feed", "smart-host", "isp-outbound", "relay")
