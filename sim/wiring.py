"""Wire a validated scenario into a runnable world.

For every host: its link.  For DNS: the zones.  For every role: the mta
role configuration (:mod:`mta.roles`), its SMTP server on each port, its
finger listener and connectivity probes, and the host's queue (one
:class:`~mta.queue.QueueManager` per host, shared by the roles and senders
on it; a customer server delivers into its :class:`~mta.mailbox.MailboxStore`
instead).  For every actor: its coroutine on its host.  Expectations are
written into the log (``GuaranteeExpected``) so reports need only the log.

What a scenario asks for that no component implements yet is refused with
a :class:`~sim.runner.RunnerError` naming the key and the missing module:
a run never pretends a feature it does not have.
"""
from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass, field
from typing import Any

from mta import events as ev
from mta import roles as mroles
from mta.delivery.client import DeliveryConfig
from mta.delivery.routing import Route
from mta.policy import DnsblZone
from mta.ondemand.probe import ConnectivityProbe, ProbeConfig
from mta.queue.manager import QueueManager
from mta.queue.policy import QueueConfig
from mta.queue.store import MemoryStore
from sim.world.disk import SimulatedDisk
from sim.actors.dialup import DialupCustomerActor
from sim.actors.sender import SenderActor
from sim.actors.spammer import SpammerActor
from sim.runner import RUNNER_HOST, ObservedSink, RunnerError
from sim.scenario import roles as sr
from sim.scenario import traffic as st
from sim.convert import initially_up, link_spec, resolver_options, retry_schedule
from sim.scenario.schema import Scenario
from sim.world.core import World


#: Slack on retry-discipline bounds derived from the presets: a delivery round
#: may spend two connect timeouts (two MX addresses) before it is deferred.
ROUND_SLACK = 2 * DeliveryConfig().connect_timeout


@dataclass
class HostPlan:
    """What one host runs, gathered before anything starts."""

    name: str
    local_domains: list[str] = field(default_factory=list)
    hold_domains: list[str] = field(default_factory=list)
    routes: dict[str, Route] = field(default_factory=dict)
    retry: Any = None
    lifetimes: dict[str, float] = field(default_factory=dict)
    servers: list[Any] = field(default_factory=list)       # SmtpServer / FingerListener
    probes: list[ProbeConfig] = field(default_factory=list)
    needs_queue: bool = False


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


def assemble(sc: Scenario, seed: int, sink: ObservedSink) -> Built:
    """Build the world of ``sc`` with ``seed``; nothing has run yet (t = 0)."""
    world = World(seed=seed, scenario=sc.name, sink=sink)
    for e in sc.expectations:
        sink.emit(ev.GuaranteeExpected(t=0.0, host=RUNNER_HOST, guarantee=e.guarantee,
                                       expected=e.expect, params=check_params(sc, e)))
    for h in sc.hosts:
        world.add_host(h.name, h.address, link=link_spec(h))
    if sc.dns is not None:
        world.set_zones(sc.dns.zones, **resolver_options(sc.dns))
    addresses = {h.name: h.address for h in sc.hosts}
    plans = {h.name: HostPlan(h.name) for h in sc.hosts}

    for i, role in enumerate(sc.roles):
        _plan_role(world, plans[role.host], role, f"roles[{i}]")
    senders = [(i, a) for i, a in enumerate(sc.traffic) if isinstance(a, st.Sender)]
    for i, a in senders:
        _plan_sender(plans[a.host], a, f"traffic[{i}]")
    for i, a in senders:
        plan = plans[a.host]
        if not plan.servers and plan.local_domains:
            # The sending MTA's own inbound server, for DSNs coming back.
            config = mroles.PrimaryMx(hostname=a.host, local_domains=tuple(plan.local_domains))
            plan.servers.append(_Server(world.host(a.host), config))

    queues: dict[str, QueueManager] = {}
    for name in sorted(plans):
        plan = plans[name]
        host = world.host(name)
        if plan.needs_queue:
            queues[name] = _queue(host, plan)
            world.run_until_complete(host, queues[name].start(restarted=False))
        for server in plan.servers:
            server.bind(queues.get(name))
            world.run_until_complete(host, server.start())

    probes = []
    for name in sorted(plans):
        for config in plans[name].probes:
            probe = ConnectivityProbe(world.host(name).ctx, queues[name], config)
            world.spawn(world.host(name), probe.run(), name=f"probe:{config.domain}")
            probes.append(probe)

    actors = [_start_actor(world, sc, i, a, queues, addresses) for i, a in enumerate(sc.traffic)]
    return Built(world, queues, actors, probes)


def host_retry(sc: Scenario) -> dict[str, tuple[Any, dict[str, float]]]:
    """Each queueing host's retry schedule and per-domain lifetimes: its
    first role's, or else its first sender's (the same rule as the queues)."""
    out: dict[str, tuple[Any, dict[str, float]]] = {}
    for role in sc.roles:
        if role.host not in out:
            out[role.host] = (retry_schedule(role.retry), dict(role.retry.lifetimes))
    for a in sc.traffic:
        if isinstance(a, st.Sender) and a.host not in out:
            out[a.host] = (retry_schedule(a.retry), dict(a.retry.lifetimes))
    return out


def check_params(sc: Scenario, e: Any) -> dict[str, Any]:
    """The expectation's parameters, completed from the scenario where the
    check needs facts the scenario already states.

    ``retry-discipline`` gets ``per_host`` bounds from each host's retry
    schedule (its minimum and maximum backoff, and its shortest lifetime,
    per-domain ones included) unless the scenario gives them.
    """
    params = dict(e.params)
    if e.guarantee == "retry-discipline" and not {"min_backoff", "max_backoff",
                                                  "lifetime"} <= set(params):
        derived = {}
        for host, (schedule, lifetimes) in sorted(host_retry(sc).items()):
            derived[host] = {"min_backoff": schedule.min_backoff,
                             "max_backoff": schedule.max_backoff,
                             "lifetime": min([schedule.lifetime, *lifetimes.values()])}
        given = params.get("per_host", {}) or {}
        params["per_host"] = {h: dict(derived.get(h, {}), **given.get(h, {}))
                              for h in sorted(set(derived) | set(given))}
        # Gaps are measured between the starts of delivery rounds, and a
        # round that ends deferred may first wait out connect timeouts.
        params.setdefault("tolerance", ROUND_SLACK)
    return params


# --------------------------------------------------------------------------
# Roles
# --------------------------------------------------------------------------

@dataclass
class _Server:
    """A server to start once the host's queue exists."""

    host: Any
    config: mroles.ReceivingRole
    store: bool = False           # deliver into a MailboxStore, not the queue
    finger: bool = False
    _impl: Any = None

    def bind(self, queue: QueueManager | None) -> None:
        ctx = self.host.ctx
        if self.finger:
            self._impl = self.config.build_finger(ctx, queue)
        else:
            sink = self.config.build_store(ctx) if self.store else queue
            self._impl = self.config.build_server(ctx, sink, release=queue)

    async def start(self) -> None:
        await self._impl.start()


_MISSING = {
    # scenario key -> the module that would implement it
    "greylisting": "mta.policy.greylist",
    "virus_scan": "mta.policy.virus",
    "spam": "mta.policy.spam",
    "pop_before_smtp": "mta.policy.popbeforesmtp",
    "sender_domains": "mta.policy.sender",
    "blocked_attachments": "mta.policy.attachments",
}


def _unavailable(role: Any, where: str) -> None:
    """Refuse settings whose component does not exist (never ignore them)."""
    wanted = []
    if getattr(role, "greylisting", None) is not None and role.greylisting.enabled:
        wanted.append("greylisting")
    if getattr(role, "virus_scan", False):
        wanted.append("virus_scan")
    if getattr(role, "spam", None) is not None and role.spam.enabled:
        wanted.append("spam")
    for key in ("pop_before_smtp", "sender_domains", "blocked_attachments"):
        if getattr(role, key, None):
            wanted.append(key)
    for key in wanted:
        if importlib.util.find_spec(_MISSING[key]) is None:
            raise RunnerError(
                f"{where}.{key}: this run needs {_MISSING[key]}, which is not part of mxsim "
                f"yet; switch the setting off to run the rest of the scenario")


def _common(role: sr.RoleBase) -> dict[str, Any]:
    kw: dict[str, Any] = dict(
        hostname=role.host,
        trusted_networks=tuple(role.trusted_networks),
        allowlist=tuple(role.allow_list) if role.allow_list is not None else None,
        blocklist=tuple(role.blocklist),
        dnsbl=tuple(DnsblZone(zone=d.zone, codes=tuple(d.codes), fail=d.fail)
                    for d in role.dnsbl),
    )
    if role.size_limit is not None:
        kw["max_message_size"] = role.size_limit
    if role.recipient_limit is not None:
        kw["max_recipients"] = role.recipient_limit.limit
        kw["recipient_limit_mode"] = role.recipient_limit.behaviour
    return kw


def _exchanger(role: sr.Exchanger) -> dict[str, Any]:
    kw = dict(relay_domains=tuple(role.relay_domains),
              relay_recipients=tuple(role.valid_recipients)
              if role.valid_recipients is not None else None,
              etrn=role.etrn is not None and role.etrn.enabled,
              finger=role.finger is not None and role.finger.enabled)
    if role.etrn is not None and role.etrn.allowed:
        kw["etrn_clients"] = tuple(role.etrn.allowed)
    if role.finger is not None:
        kw["finger_port"] = role.finger.port
    return kw


def role_config(role: Any) -> mroles.ReceivingRole:
    """The :mod:`mta.roles` configuration for a scenario role (first port)."""
    kw = _common(role)
    if isinstance(role, sr.PrimaryMx):
        return mroles.PrimaryMx(local_domains=tuple(role.local_domains),
                                local_recipients=tuple(role.valid_recipients)
                                if role.valid_recipients is not None else None, **kw)
    if isinstance(role, sr.QueueingServer):
        return mroles.QueueingServer(**_exchanger(role), **kw)
    if isinstance(role, sr.SecondaryMx):
        return mroles.BackupMx(**_exchanger(role), **kw)
    if isinstance(role, sr.CustomerServer):
        return mroles.CustomerMailServer(local_domains=tuple(role.local_domains),
                                         mailboxes=tuple(role.valid_recipients), **kw)
    if isinstance(role, sr.SmartHost):
        return mroles.SmartHost(require_fqdn_helo=role.require_fqdn, **kw)
    if isinstance(role, sr.IspOutbound):
        return mroles.IspOutbound(untrusted_networks=tuple(role.refuse_servers), **kw)
    if isinstance(role, sr.SmtpFeed):
        return mroles.BackupMx(relay_domains=tuple(role.client_domains), **kw)
    if isinstance(role, sr.Relay):
        users = dict(role.auth.users) if role.auth is not None else None
        return mroles.ReceivingRole(users=users, allow_auth_relay=users is not None, **kw)
    raise TypeError(f"unknown role {role!r}")


def _route(nexthop: str) -> Route:
    """``[host]`` (no MX lookup), ``host`` (MX lookup) or either with ``:port``."""
    port = None
    if nexthop.rsplit(":", 1)[-1].isdigit() and ":" in nexthop:
        nexthop, _, p = nexthop.rpartition(":")
        port = int(p)
    if nexthop.startswith("[") and nexthop.endswith("]"):
        return Route(hosts=(nexthop[1:-1],), port=port, mx=False)
    return Route(hosts=(nexthop,), port=port, mx=True)


def _plan_role(world: World, plan: HostPlan, role: Any, where: str) -> None:
    _unavailable(role, where)
    try:
        config = role_config(role)
        configs = [dataclasses.replace(config, port=p) for p in role.ports]
    except (mroles.RoleError, ValueError) as exc:
        raise RunnerError(f"{where}: {exc}") from None
    host = world.host(role.host)
    store = isinstance(role, sr.CustomerServer)
    plan.servers += [_Server(host, c, store=store) for c in configs]
    if config.finger:
        plan.servers.append(_Server(host, config, finger=True))
    if isinstance(role, (sr.PrimaryMx, sr.CustomerServer)):
        # (a customer server's own outbound queue delivers its local domains
        # locally too, e.g. a DSN coming back to a sender on the same host)
        plan.local_domains += role.local_domains
    if isinstance(role, sr.Exchanger):
        plan.hold_domains += role.held()
    plan.routes.update({d: _route(n) for d, n in role.routes.items()})
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
                raise RunnerError(f"{where}.probe: expected a probe target or a route for "
                                  f"{domain} (routes: {{{domain}: '[host]'}})")
            plan.probes.append(ProbeConfig(domain=domain, target=target, port=role.probe.port,
                                           interval=role.probe.interval,
                                           timeout=role.probe.timeout))


def _route_target(route: Route | None) -> str | None:
    return route.hosts[0] if route is not None and not route.mx else None


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


def _queue(host: Any, plan: HostPlan) -> QueueManager:
    config = QueueConfig(retry=plan.retry, domain_lifetimes=dict(plan.lifetimes),
                         hold_domains=tuple(dict.fromkeys(plan.hold_domains)),
                         local_domains=tuple(dict.fromkeys(plan.local_domains)))
    delivery = DeliveryConfig(routes=dict(plan.routes), mx_names=(plan.name,))
    return QueueManager(host.ctx, MemoryStore(SimulatedDisk()), config, delivery)


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
        sink = world.sink
        sink.on_link_up.setdefault(host.name, []).append(
            lambda: world.spawn(host, actor.on_link_up(), name=f"{name}:link-up"))
        world.spawn(host, actor.run(initially_up(sc.host(spec.host))), name=name)
    else:  # pragma: no cover - the schema admits no other kind
        raise TypeError(f"unknown actor {spec!r}")
    return actor
