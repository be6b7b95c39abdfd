"""Queue policy: the settings of one queue and the per-domain lookups.

:class:`QueueConfig` holds what an operator sets (retry preset, per-domain
schedules and lifetimes, held and local domains, concurrency);
:class:`QueuePolicy` answers the questions the manager asks per recipient
domain (which schedule, held or not, local or not), caching the answers.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from mta.addresses import domain_matches
from mta.retry.exim import EximHints
from mta.retry.presets import preset

DEFAULT_PRESET = "postfix"


@dataclass
class QueueConfig:
    """Queue policy.  ``retry`` is a :class:`mta.retry.presets.RetrySchedule` (default:
    the Postfix preset); ``domain_retry`` overrides it per domain and
    ``domain_lifetimes`` changes only the lifetime (the feed's 2 days).
    ``hold_domains``: ``example.com`` holds that domain, ``.example.com``
    its subdomains.  ``local_domains`` are filed into the host's :class:`mta.mailbox.MailboxStore`."""

    retry: Any = None
    domain_retry: dict[str, Any] = field(default_factory=dict)
    domain_lifetimes: dict[str, float] = field(default_factory=dict)
    hold_domains: tuple[str, ...] = ()
    local_domains: tuple[str, ...] = ()
    max_deliveries: int = 20          # concurrent delivery transactions
    delay_warnings: bool = True       # send one if the schedule has delay_warning


def matches(domain: str, patterns: tuple[str, ...]) -> bool:
    """``example.com`` matches that domain, ``.example.com`` its subdomains
    (the same rule as the server's domain lists)."""
    return domain_matches(domain, patterns)


class QueuePolicy:
    """Per-domain answers from a :class:`QueueConfig` (cached)."""

    def __init__(self, config: QueueConfig) -> None:
        self.config = config
        self._schedules: dict[str, Any] = {}
        self._bounce_schedules: dict[str, Any] = {}
        #: Exim's per-destination retry records, shared by this queue's messages.
        self.hints = EximHints()

    def held(self, domain: str) -> bool:
        return matches(domain, self.config.hold_domains)

    def local(self, domain: str) -> bool:
        return matches(domain, self.config.local_domains)

    def schedule_for(self, domain: str) -> Any:
        """The retry schedule for ``domain`` (per-domain override or lifetime)."""
        s = self._schedules.get(domain)
        if s is not None:
            return s
        s = self._lookup(domain, self.config.domain_retry)
        if s is None:
            s = self.config.retry
            if s is None:
                s = self.config.retry = preset(DEFAULT_PRESET)
            life = self._lookup(domain, self.config.domain_lifetimes)
            if life is not None:
                if hasattr(s, "with_lifetime"):
                    s = s.with_lifetime(float(life))
                else:
                    s = dataclasses.replace(s, lifetime=float(life))
        self._schedules[domain] = s
        return s

    def schedule_of(self, domain: str, mail_from: str) -> Any:
        """The schedule for a recipient in ``domain`` of a message from
        ``mail_from``: a message from ``<>`` (a bounce) gets the schedule's
        bounce variant (Postfix's bounce_queue_lifetime, Exim's frozen bounces)."""
        if mail_from:
            return self.schedule_for(domain)
        s = self._bounce_schedules.get(domain)
        if s is None:
            s = self.schedule_for(domain)
            s = self._bounce_schedules[domain] = s.for_bounce() if hasattr(s, "for_bounce") else s
        return s

    @staticmethod
    def _lookup(domain: str, table: dict[str, Any]) -> Any:
        """Exact domain, then parent domains (``.parent`` or ``parent``)."""
        if domain in table:
            return table[domain]
        parts = domain.split(".")
        for i in range(1, len(parts)):
            parent = ".".join(parts[i:])
            for key in ("." + parent, parent):
                if key in table:
                    return table[key]
        return None

