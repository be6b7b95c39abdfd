"""Operator actions in a scenario's timeline (``operations:``).

Seed 001's provider acts on a client's SMTP feed while it runs: "we can be
asked to extend the queue time or setup temporary POP3 mailboxes (with
webmail) ...; we can then be asked to revert to the SMTP feed".  Each entry
of ``operations`` is one such action at a simulated time::

    operations:
      - {at: 40h, extend-queue: {client: client-a.example, lifetime: 4d}}
      - {at: 30h, switch-to-pop3: {client: client-b.example,
                                   users: {ben@client-b.example: secret}}}
      - {at: 70h, switch-to-feed: {client: client-b.example}}

``client`` is one of the ``client_domains`` of an ``smtp-feed`` role (the
feed that serves it is found from the roles; ``feed`` names it when several
do).  The functions here take the whole
:class:`~sim.scenario.schema.Scenario` (typed ``Any``: the schema imports
this module).  :func:`operation_problems` checks what the models cannot see alone:
the client, the feed, the time within the run, and that switches alternate.
"""
from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from mta.units import format_duration
from sim.scenario.types import DomainName, Duration, HostName, MailAddress, Strict

ACTIONS = ("extend-queue", "switch-to-pop3", "switch-to-feed")


class ExtendQueue(Strict):
    """Keep the client's mail ``lifetime`` after queueing (longer than it
    was), from ``at`` on and for what is queued already."""

    client: DomainName
    lifetime: Duration
    feed: HostName | None = None

    @model_validator(mode="after")
    def _positive(self) -> "ExtendQueue":
        if self.lifetime <= 0:
            raise ValueError("expected a lifetime above zero")
        return self


class SwitchToPop3(Strict):
    """Stop relaying the client's mail; file it (and what is queued) into
    temporary POP3 mailboxes on the feed host, served on ``port`` to
    ``users`` (mailbox address -> password)."""

    client: DomainName
    users: dict[MailAddress, str] = Field(min_length=1)
    port: int = Field(default=110, ge=1, le=65535)
    feed: HostName | None = None


class SwitchToFeed(Strict):
    """Back to the SMTP feed: the POP3 mailboxes stop receiving and serving;
    mail to the client is relayed to its server again."""

    client: DomainName
    feed: HostName | None = None


class Operation(Strict):
    """One operator action at ``at`` (exactly one action key)."""

    at: Duration
    extend_queue: ExtendQueue | None = Field(default=None, alias="extend-queue")
    switch_to_pop3: SwitchToPop3 | None = Field(default=None, alias="switch-to-pop3")
    switch_to_feed: SwitchToFeed | None = Field(default=None, alias="switch-to-feed")

    @model_validator(mode="after")
    def _one_action(self) -> "Operation":
        given = [a for a in ACTIONS if self.action_of(a) is not None]
        if len(given) != 1:
            raise ValueError(f"expected exactly one of {', '.join(ACTIONS)}, "
                             f"got {', '.join(given) or 'none'}")
        return self

    def action_of(self, name: str) -> Any:
        return getattr(self, name.replace("-", "_"))

    @property
    def name(self) -> str:
        """The action's key (``extend-queue``...)."""
        return next(a for a in ACTIONS if self.action_of(a) is not None)

    @property
    def action(self) -> Any:
        return self.action_of(self.name)


def feed_of(sc: Any, action: Any) -> str | None:
    """The host of the smtp-feed role serving ``action.client`` (the named
    ``feed`` if given), or None when no single feed serves it."""
    feeds = [r.host for r in sc.roles if r.role == "smtp-feed"
             and action.client.lower() in (d.lower() for d in r.client_domains)
             and (action.feed is None or r.host == action.feed)]
    return feeds[0] if len(feeds) == 1 else None


def _role_lifetime(sc: Any, feed: str, domain: str) -> float:
    """The queue lifetime the feed's role gives ``domain`` (its retry
    preset's, or its per-domain ``lifetimes`` entry)."""
    from mta.retry.presets import preset
    role = next(r for r in sc.roles if r.role == "smtp-feed" and r.host == feed)
    for d, seconds in role.retry.lifetimes.items():
        if d.lower() == domain.lower():
            return seconds
    return preset(role.retry.preset, **role.retry.overrides()).lifetime


def operation_problems(sc: Any) -> list[tuple[tuple, str]]:
    """``[(key path, message)]`` for operations that cannot be carried out:
    an unknown client, an ambiguous feed, a time outside the run, a queue
    time that does not extend, a switch to the mode the client is already
    in."""
    out: list[tuple[tuple, str]] = []
    clients = sorted({d for r in sc.roles if r.role == "smtp-feed" for d in r.client_domains})
    switched: set[tuple[str, str]] = set()
    lifetimes: dict[tuple[str, str], float] = {}
    for i, op in sorted(enumerate(sc.operations), key=lambda p: (p[1].at, p[0])):
        path, act = ("operations", i), op.action
        if not 0 <= op.at < sc.duration:
            out.append((path + ("at",), f"expected a time within the run (from 0 to before "
                                        f"{format_duration(sc.duration)}), got "
                                        f"{format_duration(op.at)}"))
        if act.client.lower() not in (c.lower() for c in clients):
            out.append((path + (op.name, "client"),
                        f"expected a client domain of an smtp-feed role "
                        f"({', '.join(clients) or 'none in this scenario'}), got {act.client!r}"))
            continue
        feed = feed_of(sc, act)
        if feed is None:
            out.append((path + (op.name, "feed"),
                        f"expected 'feed' naming the one smtp-feed host serving {act.client}"
                        if act.feed is None else
                        f"expected an smtp-feed host serving {act.client}, got {act.feed!r}"))
            continue
        key = (feed, act.client.lower())
        if op.name == "extend-queue":
            now = lifetimes.get(key) or _role_lifetime(sc, feed, act.client)
            if act.lifetime <= now:
                out.append((path + (op.name, "lifetime"),
                            f"expected a lifetime longer than the {format_duration(now)} "
                            f"{act.client} has at {format_duration(op.at)}, got "
                            f"{format_duration(act.lifetime)}"))
            lifetimes[key] = max(now, act.lifetime)
        elif op.name == "switch-to-pop3":
            if key in switched:
                out.append((path, f"{act.client} is on POP3 mailboxes already at "
                                  f"{format_duration(op.at)} (switch-to-feed first)"))
            switched.add(key)
        elif op.name == "switch-to-feed":
            if key not in switched:
                out.append((path, f"{act.client} is on the SMTP feed at "
                                  f"{format_duration(op.at)} (nothing to switch back from)"))
            switched.discard(key)
    return out
