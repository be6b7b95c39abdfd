"""From a validated scenario to the configurations components are built from.

Every pure scenario-to-component conversion lives here, and nothing else:
link schedules and link specs for :mod:`sim.world.network`, resolver options
for :mod:`sim.world.dns`, retry schedules for :mod:`mta.retry.presets`,
receiving-role configurations for :mod:`mta.roles` and routes for
:mod:`mta.delivery`.  Nothing here runs or starts anything.

Validation (:mod:`sim.scenario.loader`) calls :func:`role_config` to ask the
components whether a role's settings can work; the wiring
(:mod:`sim.wiring`) builds the world from the same conversions, so what
validates is exactly what runs.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mta import roles as mroles
from mta.policy import DnsblZone
from mta.retry.presets import preset
from sim.scenario import roles as sr
from sim.scenario import schema as s
from sim.scenario import traffic as st
from mta.units import format_duration
from sim.scenario.roles import Retry
from sim.world.schedules import AlwaysUp, DialupWindows, Intervals, LinkSchedule, Outages, RandomOnOff

if TYPE_CHECKING:
    from mta.delivery.routing import Route
    from sim.world.network import LinkSpec


class Unsupported(ValueError):
    """A valid scenario asks for something no component implements yet; the
    message names the key path and the missing module."""


# --------------------------------------------------------------------------
# Hosts, links, DNS
# --------------------------------------------------------------------------

def link_schedule(spec: Any) -> LinkSchedule:
    """The :mod:`sim.world.schedules` object for a scenario schedule."""
    if isinstance(spec, s.AlwaysSchedule):
        return AlwaysUp()
    if isinstance(spec, s.OutagesSchedule):
        return Outages([(w.start, w.end) for w in spec.outages])
    if isinstance(spec, s.IntervalsSchedule):
        return Intervals([(w.start, w.end) for w in spec.up])
    if isinstance(spec, s.DialupSchedule):
        return DialupWindows(up=spec.up, every=spec.every, offset=spec.start, jitter=spec.jitter)
    if isinstance(spec, s.RandomSchedule):
        return RandomOnOff(mean_up=spec.mean_up, mean_down=spec.mean_down,
                           start_up=spec.initially == "up")
    raise TypeError(f"unknown schedule {spec!r}")


def link_spec(host: s.Host) -> "LinkSpec":
    """The :class:`~sim.world.network.LinkSpec` for a scenario host."""
    # Imported here: the network pulls in the simulated loop, which validating
    # a scenario (the rest of this module's users) never needs.
    from sim.world.network import LinkSpec
    port25 = host.access.port25
    return LinkSpec(
        latency=host.link.latency,
        bandwidth=host.link.bandwidth,
        schedule=link_schedule(host.link.schedule),
        down_connect=host.link.down_connect,
        down_open=host.link.down_open,
        port25="blocked" if port25 == "blocked" else "open",
        port25_redirect=port25.intercepted_by if isinstance(port25, s.Intercept) else None,
    )


def initially_up(host: s.Host) -> bool:
    return link_schedule(host.link.schedule).initial_up


def resolver_options(dns: s.Dns) -> dict[str, Any]:
    """Keyword arguments for ``World.set_zones`` / ``SimResolver``."""
    return {"latency": dns.latency,
            "outages": [(o.start, o.end, o.mode, o.target) for o in dns.outages]}


# --------------------------------------------------------------------------
# Retry
# --------------------------------------------------------------------------

def retry_schedule(retry: Retry) -> Any:
    """An :class:`mta.retry.base.RetrySchedule` for a scenario retry setting:
    the named preset with the scenario's overrides applied."""
    return preset(retry.preset, **retry.overrides())


def host_retry(sc: s.Scenario) -> dict[str, tuple[Any, dict[str, float]]]:
    """Each queueing host's retry schedule and per-domain lifetimes: its
    first role's, or else its first sender's (the rule the wiring follows
    when it gives each host one queue)."""
    out: dict[str, tuple[Any, dict[str, float]]] = {}
    for role in sc.roles:
        if role.host not in out:
            out[role.host] = (retry_schedule(role.retry), dict(role.retry.lifetimes))
    for a in sc.traffic:
        if isinstance(a, st.Sender) and a.host not in out:
            out[a.host] = (retry_schedule(a.retry), dict(a.retry.lifetimes))
    return out


# --------------------------------------------------------------------------
# Receiving roles
# --------------------------------------------------------------------------

#: Scenario settings no role wires to a component yet -> what is missing.
#: A component's module existing is not enough: only the wiring makes a
#: run use it, so a setting leaves this table when its role builds it.
#: (Empty since the smtp-feed's chain and the restricted relay's stages run.)
NOT_WIRED: dict[str, str] = {}


def check_supported(role: Any, where: str) -> None:
    """Raise :class:`Unsupported` for a setting that no component carries
    out yet: a run never pretends a feature it does not have."""
    grey = getattr(role, "greylisting", None)
    if grey is not None and grey.enabled and not isinstance(role, sr.SmtpFeed):
        # Every role has the setting (RoleBase); only the feed builds the stage.
        raise Unsupported(f"{where}.greylisting: this run needs greylisting on a "
                          f"{role.role} role, which mxsim does not run yet (only the "
                          "smtp-feed greylists); switch the setting off to run the rest "
                          "of the scenario")
    wanted = [key for key in NOT_WIRED if getattr(role, key, None)]
    for key in wanted:
        raise Unsupported(
            f"{where}.{key}: this run needs {NOT_WIRED[key]}, which mxsim does not run "
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
    if role.idle_timeout is not None:
        kw["idle_timeout"] = role.idle_timeout
    return kw


def _exchanger(role: sr.Exchanger) -> dict[str, Any]:
    kw = dict(relay_domains=tuple(role.relay_domains),
              relay_recipients=tuple(role.valid_recipients)
              if role.valid_recipients is not None else None,
              etrn=role.etrn is not None and role.etrn.enabled,
              finger=role.finger is not None and role.finger.enabled)
    if role.etrn is not None and role.etrn.allowed:
        kw["etrn_clients"] = tuple(role.etrn.allowed)
    if role.etrn is not None:
        kw["etrn_style"] = role.etrn.style
    if role.finger is not None:
        kw["finger_port"] = role.finger.port
    return kw


def role_config(role: Any) -> mroles.ReceivingRole:
    """The :mod:`mta.roles` configuration for a scenario role (first port).

    Raises :class:`mta.roles.RoleError` (or ``ValueError``) when the
    component refuses the settings."""
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
        return smtp_feed(role, kw)
    if isinstance(role, sr.Relay):
        return mroles.RestrictedRelay(**_relay(role), **kw)
    raise TypeError(f"unknown role {role!r}")


# -- the SMTP feed --------------------------------------------------------

_SPAM_ACTIONS = {"none": "none", "header": "header", "tag": "subject", "subject": "subject",
                 "delete": "delete"}

#: Real scanners a scenario may name but the simulation cannot run.
LIVE_ONLY = "cannot be reached from the simulated loop (its connections go to simulated hosts)"


def greylist_config(g: sr.Greylisting | None) -> Any:
    """The :class:`mta.policy.greylist.GreylistConfig` for a scenario
    setting (None: greylisting off)."""
    from mta.policy.greylist_triplet import GreylistConfig
    if g is None or not g.enabled:
        return None
    return GreylistConfig(delay=g.delay, retry_window=g.retry_window, max_age=g.max_age,
                          auto_whitelist_clients=g.auto_whitelist_clients,
                          ipv4_cidr=g.ipv4_cidr, whitelist_clients=tuple(g.whitelist_clients))


def spam_settings(spam: sr.SpamCheck) -> Any:
    """The :class:`mta.filters.levels.SpamSettings` for a scenario setting."""
    from mta.filters.levels import SpamAction, SpamLevel, SpamSettings, Thresholds
    t = spam.thresholds
    actions = {SpamLevel.NONE: SpamAction.NONE}
    for level in (SpamLevel.LOW, SpamLevel.MED, SpamLevel.HIGH):
        actions[level] = SpamAction(_SPAM_ACTIONS[getattr(spam.actions, level.value)])
    return SpamSettings(enabled=spam.enabled, thresholds=Thresholds(t.low, t.med, t.high),
                        actions=actions)


def smtp_feed(role: sr.SmtpFeed, kw: dict[str, Any]) -> mroles.SmtpFeed:
    """The :class:`mta.roles.SmtpFeed` for a scenario's smtp-feed role (the
    simulation's: built-in scanner and scorer, modelled costs)."""
    from mta.feed.costs import StageCost
    if role.virus_scanner != "builtin":
        raise Unsupported(f"virus_scanner: {role.virus_scanner} {LIVE_ONLY}; "
                          "the simulation runs the built-in scanner")
    if role.spam.scorer != "builtin":
        raise Unsupported(f"spam.scorer: {role.spam.scorer} {LIVE_ONLY}; "
                          "the simulation runs the built-in scorer")
    costs = {stage: StageCost(base=c.base, per_kb=c.per_kb, processes=c.processes,
                              timeout=c.timeout)
             for stage in ("virus", "spam")
             if (c := getattr(role.filter_costs, stage)) is not None}
    return mroles.SmtpFeed(relay_domains=tuple(role.client_domains),
                           greylisting=greylist_config(role.greylisting),
                           virus_scan=role.virus_scan, spam=spam_settings(role.spam),
                           filter_costs=costs or None, **kw)
def _relay(role: sr.Relay) -> dict[str, Any]:
    """The restricted relay's own settings (seeds 002/003)."""
    users = dict(role.auth.users) if role.auth is not None else None
    kw: dict[str, Any] = dict(users=users, allow_auth_relay=users is not None)
    pop = role.pop_before_smtp
    if pop is not None:
        kw.update(pop_users=dict(pop.users), pop_mailboxes=dict(pop.mailboxes) or None,
                  pop_window=pop.window, pop_port=pop.port, refuse_at=pop.refuse_at)
    if role.sender_domains:
        if isinstance(role.sender_domains, dict):
            kw["sender_domains"] = {u: tuple(d) for u, d in role.sender_domains.items()}
        else:     # one list for every account
            accounts = sorted(set(users or {}) | set(pop.users if pop is not None else {}))
            kw["sender_domains"] = {u: tuple(role.sender_domains) for u in accounts}
    if role.blocked_attachments:
        kw["blocked_attachments"] = tuple(role.blocked_attachments)
    return kw


def route(nexthop: str) -> Route:
    """``[host]`` (no MX lookup), ``host`` (MX lookup) or either with ``:port``."""
    # Imported here: delivery brings the event classes and the host context,
    # which validating a scenario (role_config, check_supported) never needs.
    from mta.delivery.routing import Route
    port = None
    if nexthop.rsplit(":", 1)[-1].isdigit() and ":" in nexthop:
        nexthop, _, p = nexthop.rpartition(":")
        port = int(p)
    if nexthop.startswith("[") and nexthop.endswith("]"):
        return Route(hosts=(nexthop[1:-1],), port=port, mx=False)
    return Route(hosts=(nexthop,), port=port, mx=True)


# --------------------------------------------------------------------------
# The world described, for the report
# --------------------------------------------------------------------------

def _link_text(host: s.Host) -> str:
    """``host``'s link in a few words: its schedule and its line."""
    sched, fmt = host.link.schedule, format_duration
    if isinstance(sched, s.AlwaysSchedule):
        text = "always up"
    elif isinstance(sched, s.OutagesSchedule):
        text = "down " + ", ".join(f"{fmt(w.start)}-{fmt(w.end)}" for w in sched.outages)
    elif isinstance(sched, s.IntervalsSchedule):
        text = "up only " + ", ".join(f"{fmt(w.start)}-{fmt(w.end)}" for w in sched.up)
    elif isinstance(sched, s.DialupSchedule):
        text = f"dial-up: up {fmt(sched.up)} every {fmt(sched.every)} from {fmt(sched.start)}"
    else:
        text = f"random: up ~{fmt(sched.mean_up)}, down ~{fmt(sched.mean_down)}"
    if host.link.bandwidth:
        text += f"; {host.link.bandwidth * 8 / 1000:g} kbit/s"
    return text


def _access_text(host: s.Host) -> str:
    port25 = host.access.port25
    if isinstance(port25, s.Intercept):
        return f"port 25 redirected to {port25.intercepted_by}"
    return "port 25 blocked" if port25 == "blocked" else ""


def describe(sc: s.Scenario) -> dict[str, Any]:
    """The scenario's world as plain data (JSON-able, sorted where order is
    not the scenario's): what the report's topology section shows."""
    roles: dict[str, list[str]] = {h.name: [] for h in sc.hosts}
    for r in sc.roles:
        ports = "" if list(r.ports) == [25] else " (ports " + ", ".join(map(str, r.ports)) + ")"
        roles[r.host].append(r.role + ports)
    for a in sc.traffic:
        roles[a.host].append(a.kind)
    hosts = [{"name": h.name, "address": h.address, "link": _link_text(h),
              "access": _access_text(h), "roles": roles[h.name]} for h in sc.hosts]
    mx: dict[str, list[list[Any]]] = {}
    if sc.dns is not None:
        from sim.world.zones import ZoneSet
        zones = ZoneSet.from_text(sc.dns.zones)
        for origin in zones.origins:
            zone = zones.zone_for(_dns_name(origin))
            for name, node in sorted(zone.nodes.items()):
                for rds in node.rdatasets:
                    if rds.rdtype == _MX:
                        mx[name.to_text().rstrip(".")] = sorted(
                            [rd.preference, rd.exchange.to_text().rstrip(".") or "."]
                            for rd in rds)
    return {"hosts": hosts, "mx": dict(sorted(mx.items()))}


def _dns_name(text: str):
    import dns.name
    return dns.name.from_text(text)


_MX = 15   # dns.rdatatype.MX
