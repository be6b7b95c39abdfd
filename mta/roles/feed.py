"""The SMTP feed's role: greylisting at RCPT, then after queueing a virus
scan (not optional) and spam levels (off by default), then delivery."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Mapping

from mta.policy.greylist_triplet import GreylistConfig
from mta.roles.base import need, ReceivingRole
from mta.roles.mx import BackupMx

if TYPE_CHECKING:
    from mta.context import HostContext
    from mta.policy import Stage
    from mta.smtp.server import SmtpServer


#: The service's words, quoted when a feed is configured without its virus scan.
VIRUS_SCAN_NOT_OPTIONAL = ('the SMTP feed always scans for viruses (seed 001: "It is then '
                           'scanned for viruses, and deleted if needed. This is not optional.")')
VIRUS_SCANNERS = ("builtin", "clamd")
SPAM_SCORERS = ("builtin", "spamd")


def _host_port(role: str, name: str, value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    need(bool(host) and port.isdigit() and 0 < int(port) < 65536, role, name,
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
    :data:`mta.feed.costs.DEFAULT_COSTS` per stage; ``modelled_costs``
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
        need(self.virus_scan is True, r, "virus_scan", VIRUS_SCAN_NOT_OPTIONAL)
        need(self.greylisting is None or isinstance(self.greylisting, GreylistConfig), r,
              "greylisting", "must be a GreylistConfig or None (off)")
        if self.spam is None:
            object.__setattr__(self, "spam", SpamSettings())
        need(isinstance(self.spam, SpamSettings), r, "spam", "must be SpamSettings")
        need(self.virus_scanner in VIRUS_SCANNERS, r, "virus_scanner",
              f"must be one of {VIRUS_SCANNERS}")
        need(self.spam_scorer in SPAM_SCORERS, r, "spam_scorer", f"must be one of {SPAM_SCORERS}")
        _host_port(r, "clamd_address", self.clamd_address)
        _host_port(r, "spamd_address", self.spamd_address)
        from mta.feed.costs import DEFAULT_COSTS, StageCost
        for stage, cost in (self.filter_costs or {}).items():
            need(stage in DEFAULT_COSTS, r, "filter_costs", f"unknown stage {stage!r}")
            need(isinstance(cost, StageCost), r, "filter_costs", f"{stage}: must be a StageCost")

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
