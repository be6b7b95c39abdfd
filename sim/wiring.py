"""Wire a validated scenario into a world: the components, started.

For every host: its link.  For DNS: the zones.  For every role: the mta
role configuration (from :mod:`sim.convert`), its SMTP server on each port,
its finger listener and connectivity probes, and the host's queue (one
:class:`~mta.queue.manager.QueueManager` per host, shared by the roles and
senders on it; a customer server delivers into its mailbox store instead).
For every actor: its coroutine on its host, and its subscriptions to the
world (a dial-up customer acts when its link comes up).

The wiring knows components and the world, never the checks: what the
judge needs it reads from the log.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from mta import roles as mroles
from mta.delivery.client import DeliveryConfig
from mta.delivery.routing import Route
from mta.ondemand.probe import ConnectivityProbe, ProbeConfig
from mta.queue.manager import QueueManager
from mta.queue.policy import QueueConfig
from mta.queue.store import MemoryStore
from sim.world.disk import SimulatedDisk
from sim.actors.dialup import DialupCustomerActor
from sim.actors.abusers import ROAMING_ACTORS
from sim.actors.sender import SenderActor
from sim.actors.spammer import SpammerActor
from sim.convert import (check_supported, initially_up, link_spec, resolver_options, role_config,
                         retry_schedule, route)
from sim.scenario import roles as sr
from sim.scenario import traffic as st
from sim.scenario.schema import Scenario
from sim.world.core import World


class WiringError(ValueError):
    """The components refused a scenario that validated (a role setting, a
    probe without a target); the message names the key path."""


@dataclass
class HostPlan:
    """What one host runs, gathered before anything starts."""

    name: str
    local_domains: list[str] = field(default_factory=list)
    hold_domains: list[str] = field(default_factory=list)
    routes: dict[str, Route] = field(default_factory=dict)
    retry: Any = None
    lifetimes: dict[str, float] = field(default_factory=dict)
    servers: list["ServerPlan"] = field(default_factory=list)
    probes: list[ProbeConfig] = field(default_factory=list)
    needs_queue: bool = False
    content_filter: Any = None          # the feed's post-queue chain (FeedFilters)
    greylist_store: Any = None          # the feed's greylist memory, one per host


@dataclass
class Built:
    """A world ready to run, and handles on what runs in it."""

    world: World
    queues: dict[str, QueueManager]
    actors: list[Any]
    probes: list[ConnectivityProbe]

    def in_flight(self) -> int:
        """Recipients waiting in any queue right now."""
        return sum(q.state.pending() for q in self.queues.values())


def plan_hosts(sc: Scenario) -> dict[str, HostPlan]:
    """What every host of ``sc`` runs (its servers, queue settings, probes),
    decided from the scenario alone: the simulated world and a live
    ``mxsim serve`` build from the same plan.  Raises :class:`WiringError`
    or :class:`sim.convert.Unsupported` naming the key path."""
    plans = {h.name: HostPlan(h.name) for h in sc.hosts}
    for i, role in enumerate(sc.roles):
        _plan_role(plans[role.host], role, f"roles[{i}]")
    senders = [(i, a) for i, a in enumerate(sc.traffic) if isinstance(a, st.Sender)]
    for i, a in senders:
        _plan_sender(plans[a.host], a, f"traffic[{i}]")
    for i, a in senders:
        plan = plans[a.host]
        if not plan.servers and plan.local_domains:
            # The sending MTA's own inbound server, for DSNs coming back.
            config = mroles.PrimaryMx(hostname=a.host, local_domains=tuple(plan.local_domains))
            plan.servers.append(ServerPlan(config))
    return plans


def wire(world: World, sc: Scenario) -> Built:
    """Build the hosts, DNS, components and actors of ``sc`` in ``world``
    (new, at t = 0); nothing has run yet.  Raises :class:`WiringError` or
    :class:`sim.convert.Unsupported` naming the key path."""
    for h in sc.hosts:
        world.add_host(h.name, h.address, link=link_spec(h))
    if sc.dns is not None:
        world.set_zones(sc.dns.zones, **resolver_options(sc.dns))
    addresses = {h.name: h.address for h in sc.hosts}
    plans = plan_hosts(sc)

    queues: dict[str, QueueManager] = {}
    for name in sorted(plans):
        plan = plans[name]
        host = world.host(name)
        if plan.needs_queue:
            queue_config, delivery = queue_configs(plan)
            queues[name] = QueueManager(host.ctx, MemoryStore(SimulatedDisk()), queue_config,
                                        delivery, content_filter=plan.content_filter)
            world.run_until_complete(host, queues[name].start(restarted=False))
        for server in plan.servers:
            impl = server.build(host.ctx, queues.get(name))
            world.run_until_complete(host, impl.start())

    probes = []
    for name in sorted(plans):
        for config in plans[name].probes:
            probe = ConnectivityProbe(world.host(name).ctx, queues[name], config)
            world.spawn(world.host(name), probe.run(), name=f"probe:{config.domain}")
            probes.append(probe)

    actors = [_start_actor(world, sc, i, a, queues, addresses) for i, a in enumerate(sc.traffic)]
    actors += _start_operators(world, sc, queues)
    return Built(world, queues, actors, probes)


def _start_operators(world: World, sc: Scenario, queues: dict[str, QueueManager]) -> list[Any]:
    """One operator per feed host that has ``operations`` (validated: each
    names a client of exactly one feed)."""
    from mta.feed.operations import FeedOperator
    from sim.actors.operator import OperatorActor
    from sim.scenario.operations import feed_of
    by_feed: dict[str, list[Any]] = {}
    for op in sc.operations:
        by_feed.setdefault(feed_of(sc, op.action), []).append(op)
    out = []
    for name in sorted(by_feed):
        clients = tuple(d for r in sc.roles if r.role == "smtp-feed" and r.host == name
                        for d in r.client_domains)
        host = world.host(name)
        actor = OperatorActor(FeedOperator(host.ctx, queues[name], clients), by_feed[name])
        world.spawn(host, actor.run(), name=f"operator:{name}")
        out.append(actor)
    return out


# --------------------------------------------------------------------------
# Roles
# --------------------------------------------------------------------------

@dataclass
class ServerPlan:
    """A listening server of a host, built once the host's queue exists."""

    config: mroles.ReceivingRole
    store: bool = False           # deliver into a MailboxStore, not the queue
    finger: bool = False
    extra: dict[str, Any] = field(default_factory=dict)   # role-specific build_server keywords
    access: Any = None            # a restricted relay's _RelayAccess (shared by its ports)
    pop3: bool = False            # the relay's POP3 server, not an SMTP server

    @property
    def service(self) -> str:
        """What it speaks: ``smtp``, ``finger`` or ``pop3``."""
        return "finger" if self.finger else "pop3" if self.pop3 else "smtp"

    @property
    def port(self) -> int:
        """The port the scenario gives it."""
        if self.finger:
            return self.config.finger_port
        if self.pop3:
            return self.config.pop_port     # type: ignore[attr-defined]
        return self.config.port

    def build(self, ctx: Any, queue: QueueManager | None, maildir: Any = None) -> Any:
        """The server component on ``ctx``'s host (its ``start(host, port)``
        listens; without arguments, on the host's address and :attr:`port`).
        ``maildir``: a customer server's mailboxes go on disk there (live)."""
        if self.finger:
            return self.config.build_finger(ctx, queue)
        if self.access is not None:
            return self.access.bind(self, ctx, queue)
        sink = self.config.build_store(ctx, maildir) if self.store else queue
        return self.config.build_server(ctx, sink, release=queue, **self.extra)


def _plan_role(plan: HostPlan, role: Any, where: str) -> None:
    check_supported(role, where)
    try:
        config = role_config(role)
        configs = [dataclasses.replace(config, port=p) for p in role.ports]
    except (mroles.RoleError, ValueError) as exc:
        raise WiringError(f"{where}: {exc}") from None
    store = isinstance(role, sr.CustomerServer)
    if isinstance(config, mroles.RestrictedRelay):
        _plan_relay(plan, config, configs)
    else:
        plan.servers += [ServerPlan(c, store=store, extra=_feed_plan(plan, config))
                         for c in configs]
    if config.finger:
        plan.servers.append(ServerPlan(config, finger=True))
    if isinstance(role, (sr.PrimaryMx, sr.CustomerServer)):
        # (a customer server's own outbound queue delivers its local domains
        # locally too, e.g. a DSN coming back to a sender on the same host)
        plan.local_domains += role.local_domains
    if isinstance(role, sr.Exchanger):
        plan.hold_domains += role.held()
    plan.routes.update({d: route(n) for d, n in role.routes.items()})
    if isinstance(role, sr.CustomerServer) and role.smart_host:
        plan.routes.setdefault("*", Route(hosts=(role.smart_host,)))
    if plan.retry is None:
        plan.retry = retry_schedule(role.retry)
        plan.lifetimes.update(role.retry.lifetimes)
    plan.needs_queue = plan.needs_queue or not store or bool(role.routes)
    if isinstance(role, sr.Exchanger) and role.probe is not None:
        for domain in role.held():
            target = role.probe.target or _route_target(plan.routes.get(domain))
            if target is None:
                raise WiringError(f"{where}.probe: expected a probe target or a route for "
                                  f"{domain} (routes: {{{domain}: '[host]'}})")
            plan.probes.append(ProbeConfig(domain=domain, target=target, port=role.probe.port,
                                           interval=role.probe.interval,
                                           timeout=role.probe.timeout))


def _feed_plan(plan: HostPlan, config: mroles.ReceivingRole) -> dict[str, Any]:
    """An SMTP feed's host: one greylist memory store shared by its ports
    and one post-queue filter chain (its scanner processes) for its queue.
    Returns the feed server's extra build keywords."""
    if not isinstance(config, mroles.SmtpFeed):
        return {}
    from mta.policy.greylist_store import MemoryGreylistStore
    if plan.content_filter is None:
        plan.content_filter = config.build_filters()
    if config.greylisting is None:
        return {}
    if plan.greylist_store is None:
        plan.greylist_store = MemoryGreylistStore()
    return {"greylist_store": plan.greylist_store}


@dataclass
class _RelayAccess:
    """What the ports of one restricted relay share: the POP-before-SMTP
    grant table its POP3 server fills and its SMTP servers read."""

    config: mroles.RestrictedRelay
    grants: Any = None

    def __post_init__(self) -> None:
        self.grants = self.config.build_grants()

    def bind(self, server: ServerPlan, ctx: Any, queue: QueueManager | None) -> Any:
        if server.pop3:
            # POP3 over the mailboxes the host's queue delivers local mail into.
            return self.config.build_pop3(ctx, queue.mailboxes, self.grants)
        return server.config.build_server(ctx, queue, release=queue, grants=self.grants)


def _plan_relay(plan: HostPlan, config: mroles.RestrictedRelay,
                configs: list[mroles.RestrictedRelay]) -> None:
    access = _RelayAccess(config)
    plan.servers += [ServerPlan(c, access=access) for c in configs]
    if config.pop_users is not None:
        plan.servers.append(ServerPlan(config, access=access, pop3=True))
    plan.needs_queue = True


def _route_target(r: Route | None) -> str | None:
    return r.hosts[0] if r is not None and not r.mx else None


def _plan_sender(plan: HostPlan, actor: st.Sender, where: str) -> None:
    """A sender's host runs a sending MTA; its own domains are local there,
    so DSNs that come back are delivered to the sender's mailbox."""
    plan.needs_queue = True
    if plan.retry is None:
        plan.retry = retry_schedule(actor.retry)
        plan.lifetimes.update(actor.retry.lifetimes)
    if actor.smart_host:
        plan.routes.setdefault("*", Route(hosts=(actor.smart_host,)))
    for addr in actor.from_:
        domain = addr.rpartition("@")[2]
        if domain not in plan.local_domains and not plan.servers:
            plan.local_domains.append(domain)


def queue_configs(plan: HostPlan) -> tuple[QueueConfig, DeliveryConfig]:
    """The queue and delivery settings of a host that queues."""
    config = QueueConfig(retry=plan.retry, domain_lifetimes=dict(plan.lifetimes),
                         hold_domains=tuple(dict.fromkeys(plan.hold_domains)),
                         local_domains=tuple(dict.fromkeys(plan.local_domains)))
    return config, DeliveryConfig(routes=dict(plan.routes), mx_names=(plan.name,))


# --------------------------------------------------------------------------
# Actors
# --------------------------------------------------------------------------

def _start_actor(world: World, sc: Scenario, i: int, spec: Any,
                 queues: dict[str, QueueManager], addresses: dict[str, str]) -> Any:
    host = world.host(spec.host)
    rng = world.rng_for("actor", f"{i}:{spec.kind}:{spec.host}")
    name = f"{spec.kind}{i}"
    if isinstance(spec, st.Sender):
        queue = queues[spec.host]
        actor = SenderActor(spec, host.name, rng, queue.submit, name=name, stop=sc.duration)
        world.spawn(host, actor.run(), name=name)
    elif isinstance(spec, st.Spammer):
        actor = SpammerActor(spec, host.ctx, rng, name=name, addresses=addresses,
                             stop=sc.duration)
        world.spawn(host, actor.run(), name=name)
    elif isinstance(spec, st.DialupCustomer):
        actor = DialupCustomerActor(spec, host.ctx, rng, addresses=addresses, stop=sc.duration)
        world.on_link_up(host.name,
                         lambda: world.spawn(host, actor.on_link_up(), name=f"{name}:link-up"))
        world.spawn(host, actor.run(initially_up(sc.host(spec.host))), name=name)
    elif isinstance(spec, st.RoamingCustomer):
        actor = ROAMING_ACTORS[spec.kind](spec, host.ctx, rng, name=name, addresses=addresses,
                                          stop=sc.duration)
        world.spawn(host, actor.run(), name=name)
    elif isinstance(spec, st.Pop3Reader):
        from sim.actors.pop3_reader import Pop3ReaderActor
        actor = Pop3ReaderActor(spec, host.ctx, addresses=addresses, stop=sc.duration)
        world.spawn(host, actor.run(), name=name)
    else:  # pragma: no cover - the schema admits no other kind
        raise TypeError(f"unknown actor {spec!r}")
    return actor
