"""What a valid scenario probably gets wrong: references that cannot work.

The schema (:mod:`sim.scenario.schema`) checks each value and every name a
scenario gives; this module checks how the parts fit, the way a reviewer
would: where a route or a DNS record leads, who listens there, whether a
traffic pool can give what is asked of it.  Each finding is an ``error``
when the run cannot work as written, and a ``warning`` when it can but is
probably not what was meant (mail that can only time out or be refused).

Pure: a validated scenario in, findings out; the loader places them at
their line in the file.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Literal

from sim.scenario import traffic as st
from sim.scenario.schema import Scenario

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    """One problem at key path ``loc`` of a scenario."""

    loc: tuple
    message: str
    severity: Literal["error", "warning"]
    #: for findings in ``dns.zones``: the 1-based line within the zone text
    text_line: int | None = None


def findings(sc: Scenario, zones: Any | None) -> list[Finding]:
    """Every finding for ``sc``; ``zones`` is its parsed
    :class:`~sim.world.zones.ZoneSet` (None when it has no DNS)."""
    return (_route_findings(sc, zones) + _dns_findings(sc, zones) + _pool_findings(sc))


# --------------------------------------------------------------------------
# Routes and smart hosts: is someone there, listening?
# --------------------------------------------------------------------------

def _listening(sc: Scenario) -> dict[str, set[int]]:
    """Ports with an SMTP server, per host name (a sending host gets its
    own server on port 25 for the DSNs coming back)."""
    out: dict[str, set[int]] = {h.name: set() for h in sc.hosts}
    for r in sc.roles:
        out[r.host].update(r.ports)
    for a in sc.traffic:
        if isinstance(a, st.Sender):
            out[a.host].add(25)
    return out


def _addresses_of(name: str, zones: Any | None) -> list[str] | None:
    """A-record addresses of ``name`` (an IP literal is its own), or None
    when DNS does not know the name."""
    literal = name.strip("[]")
    try:
        ipaddress.ip_address(literal)
        return [literal]
    except ValueError:
        pass
    if zones is None:
        return None
    try:
        return [rd.to_text() for rd in zones.lookup(name, "A")]
    except Exception:   # NXDomain or a CNAME loop: DNS does not answer
        return None


def _route_findings(sc: Scenario, zones: Any | None) -> list[Finding]:
    by_ip = {h.address: h.name for h in sc.hosts}
    listening = _listening(sc)
    out: list[Finding] = []

    def target(loc: tuple, nexthop: str) -> None:
        name, port = _split_nexthop(nexthop)
        if not name.startswith("["):
            return      # an MX lookup: the DNS findings cover where it leads
        host = name[1:-1]
        addrs = _addresses_of(host, zones)
        if not addrs:
            where = "dns.zones" if zones is not None else "a dns section (there is none)"
            out.append(Finding(loc, f"expected a next hop with an address: {host} has no A "
                               f"record in {where}", ERROR))
            return
        for ip in addrs:
            owner = by_ip.get(ip)
            if owner is None:
                out.append(Finding(loc, f"{host} is {ip}, the address of no host: mail routed "
                                   "there can only time out", WARNING))
            elif port not in listening[owner]:
                ports = ", ".join(str(p) for p in sorted(listening[owner])) or "none"
                out.append(Finding(loc, f"nothing listens on {owner} port {port} (its SMTP "
                                   f"ports: {ports}): mail routed there will be refused",
                                   WARNING))

    for i, r in enumerate(sc.roles):
        for domain, nexthop in sorted(r.routes.items()):
            target(("roles", i, "routes", domain), nexthop)
        smart = getattr(r, "smart_host", None)
        if smart:
            target(("roles", i, "smart_host"), f"[{smart}]")
    for i, a in enumerate(sc.traffic):
        smart = getattr(a, "smart_host", None)
        if smart:
            target(("traffic", i, "smart_host"), f"[{smart}]")
    return out


def _split_nexthop(nexthop: str) -> tuple[str, int]:
    name, _, port = nexthop.rpartition(":")
    if name and port.isdigit():
        return name, int(port)
    return nexthop, 25


# --------------------------------------------------------------------------
# DNS: do MX records lead to addresses, and addresses to hosts?
# --------------------------------------------------------------------------

def _dns_findings(sc: Scenario, zones: Any | None) -> list[Finding]:
    if zones is None:
        return []
    import dns.rdatatype

    by_ip = {h.address for h in sc.hosts}
    loc = ("dns", "zones")
    text = sc.dns.zones if sc.dns is not None else ""
    out: list[Finding] = []
    for origin in zones.origins:
        zone = zones.zone_for(_name(origin))
        for name, node in sorted(zone.nodes.items()):
            owner = name.to_text().rstrip(".")
            for rds in node.rdatasets:
                if rds.rdtype == dns.rdatatype.MX:
                    for rd in sorted(rds, key=lambda r: r.to_text()):
                        exchange = rd.exchange.to_text().rstrip(".")
                        if exchange in ("", "."):
                            continue        # null MX (RFC 7505)
                        if not _addresses_of(exchange, zones):
                            out.append(Finding(loc, f"MX of {owner} is {exchange}, which has no "
                                               "A record: mail for it cannot go there", WARNING,
                                               line_of(text, origin, "MX", exchange)))
                elif rds.rdtype == dns.rdatatype.A:
                    for rd in sorted(rds, key=lambda r: r.to_text()):
                        ip = rd.to_text()
                        if ip not in by_ip and not ipaddress.ip_address(ip).is_loopback:
                            # (127.0.0.x answers are block-list listings, not hosts)
                            out.append(Finding(loc, f"{owner} has address {ip}, which no host "
                                               "has: connections to it can only time out",
                                               WARNING, line_of(text, origin, "A", ip)))
    return out


def line_of(text: str, origin: str, rdtype: str, value: str) -> int | None:
    """The 1-based line of the zone text, under ``$ORIGIN origin``, holding
    a ``rdtype`` record whose data names ``value`` (absolute or relative)."""
    relative = value.removesuffix("." + origin) if value.endswith("." + origin) else None
    wanted = {value, value + "."} | ({relative} if relative else set())
    current = None
    for n, line in enumerate(text.splitlines(), 1):
        tokens = line.split(";", 1)[0].split()
        if len(tokens) >= 2 and tokens[0].upper() == "$ORIGIN":
            current = tokens[1].rstrip(".").lower()
            continue
        if current == origin.lower() and rdtype in (tok.upper() for tok in tokens) \
                and wanted & set(tokens):
            return n
    return None


def _name(origin: str):
    import dns.name
    return dns.name.from_text(origin)


# --------------------------------------------------------------------------
# Traffic: can the pools give what is asked?
# --------------------------------------------------------------------------

def _max_count(dist: Any) -> int:
    if isinstance(dist, st.FixedCount):
        return dist.value
    if isinstance(dist, st.UniformCount):
        return dist.max
    return max(dist.values)


def _pool_findings(sc: Scenario) -> list[Finding]:
    out: list[Finding] = []
    for i, a in enumerate(sc.traffic):
        if not isinstance(a, (st.Sender, st.Spammer)) or not a.to:
            continue
        want = _max_count(a.recipients)
        plain = [t for t in a.to if "{n}" not in t]
        if want > len(plain) and len(plain) == len(a.to):
            out.append(Finding(("traffic", i, "recipients"),
                               f"asks for up to {want} distinct recipients per message, but "
                               f"'to' has {len(plain)} address{'es' if len(plain) != 1 else ''}: "
                               "messages get at most that many (add addresses, or a template "
                               "such as user{n}@example.net)", WARNING))
    return out
