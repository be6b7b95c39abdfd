"""Outbound routing: where a domain's mail goes next (RFC 5321 §5.1, RFC 7505).

* a :class:`Route` for the domain (or the ``"*"`` default route) overrides
  MX lookup: the SMTP feed delivers to its client's configured address, a
  secondary MX forwards to its primary, a customer mailer hands everything
  to its smart host;
* otherwise MX records in preference order, equal preferences shuffled with
  the host's injected random source (:func:`order_mx`);
* a relaying MX drops every record at its own preference or higher and
  bounces if none remain;
* a null MX (``MX 0 .``) fails at once with 556 5.1.10;
* no MX records: the domain's own address records (implicit MX).

Every MX lookup is recorded as an :class:`mta.events.MxAnswer` (records in
the resolver's order, before the shuffle, and the exchanges left without an
address), so a judge can hold each delivery round to what DNS said.

:class:`Router` answers where to try a domain's mail; the
:class:`mta.delivery.client.Deliverer` is given one.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from mta import events as ev
from mta.context import HostContext
from mta.dns.resolver import DnsError, DnsTimeout, MxRecord, NXDomain, ServFail

# Synthetic replies for routing failures (before any server answered).
NULL_MX = (556, "5.1.10 Recipient address has null MX")
DOMAIN_NOT_FOUND = (550, "5.1.2 Host or domain name not found")
NO_ADDRESS = (554, "5.4.4 Host or domain name has no address")
DNS_TEMPFAIL = (451, "4.4.3 Temporary failure looking up the destination")
MX_LOOP = (554, "5.4.6 Mail for the domain loops back to myself")


@dataclass(frozen=True)
class Route:
    """Send a domain's mail to fixed next hops instead of its MX hosts.

    ``hosts`` are names or IP literals, tried in order.  With ``mx=True``
    the names are looked up as MX domains (Postfix ``relayhost = name``
    rather than ``[name]``).
    """

    hosts: tuple[str, ...]
    port: int | None = None
    mx: bool = False


@dataclass(frozen=True)
class Destination:
    """One address to try: the host's name, its IP and port, its MX preference."""

    host: str
    ip: str
    port: int
    preference: int | None = None


class RouteFailure(Exception):
    """No destination can be tried now; ``permanent`` decides bounce vs defer."""

    def __init__(self, code: int, text: str, permanent: bool) -> None:
        super().__init__(f"{code} {text}")
        self.code, self.text, self.permanent = code, text, permanent


# Characters an IP literal can hold without a scope ID ("%eth0").
_IP_CHARS = frozenset("0123456789abcdefABCDEF.:[]")


def is_ip(s: str) -> bool:
    """Whether ``s`` is an IP literal (``[...]`` brackets allowed)."""
    if "%" not in s and not _IP_CHARS.issuperset(s):
        return False        # a host name: no need for two failed parses
    try:
        ipaddress.ip_address(s.strip("[]"))
        return True
    except ValueError:
        return False


def order_mx(records: list[MxRecord], rng, own_names: tuple[str, ...]) -> list[MxRecord]:
    """RFC 5321 §5.1 ordering: by preference, ties shuffled with ``rng``;
    records at or above our own preference removed when we are an MX."""
    own = {n.lower().rstrip(".") for n in own_names}
    ours = [r.preference for r in records if r.exchange.lower().rstrip(".") in own]
    if ours:
        records = [r for r in records if r.preference < min(ours)]
        if not records:
            raise RouteFailure(*MX_LOOP, permanent=True)
    out: list[MxRecord] = []
    for pref in sorted({r.preference for r in records}):
        group = sorted(r for r in records if r.preference == pref)
        rng.shuffle(group)
        out.extend(group)
    return out


class Router:
    """Destination lookup for one host: DNS through ``ctx.resolver``, ties
    shuffled with ``ctx.rng``, and the host's routes and ports."""

    def __init__(self, ctx: HostContext, *, routes: dict[str, Route], port: int,
                 ports: dict[str, int], mx_names: tuple[str, ...], max_addresses: int) -> None:
        self.ctx = ctx
        self.routes = routes
        self.port = port
        self.ports = ports
        self.own_names = mx_names or (ctx.hostname,)
        self.max_addresses = max_addresses

    def _port(self, ip: str, route: Route | None) -> int:
        if ip in self.ports:
            return self.ports[ip]
        if route is not None and route.port is not None:
            return route.port
        return self.port

    async def _addresses(self, name: str) -> list[str]:
        if is_ip(name):
            return [name.strip("[]")]
        return await self.ctx.resolver.a(name)  # type: ignore[union-attr]

    async def destinations(self, domain: str) -> list[Destination]:
        """Where to try ``domain``'s mail, best first; raises RouteFailure."""
        route = self.routes.get(domain) or self.routes.get("*")
        out: list[Destination] = []
        transient = False
        if route is not None and not route.mx:
            for host in route.hosts:
                found, failed = await self._resolve(host, None, route)
                out += found
                transient = transient or failed
        else:
            for name in (list(route.hosts) if route is not None else [domain]):
                records = await self._mx_records(domain, name)
                if not records:     # implicit MX: the name's own address
                    found, failed = await self._resolve(name, None, route)
                    out += found
                    transient = transient or failed
                    continue
                try:
                    ordered = order_mx(records, self.ctx.rng, self.own_names)
                except RouteFailure:
                    self._answer(domain, name, "answer", records)
                    raise
                unresolved: list[str] = []
                for r in ordered:
                    host = r.exchange.rstrip(".")
                    found, failed = await self._resolve(host, r.preference, route)
                    out += found
                    transient = transient or failed
                    if not found:
                        unresolved.append(r.exchange)
                self._answer(domain, name, "answer", records, unresolved)
        if not out:
            if transient:
                raise RouteFailure(*DNS_TEMPFAIL, permanent=False)
            raise RouteFailure(*NO_ADDRESS, permanent=True)
        return out[: self.max_addresses]

    async def _resolve(self, host: str, pref: int | None, route: Route | None
                       ) -> tuple[list[Destination], bool]:
        """``host``'s destinations, and whether its lookup failed for now."""
        try:
            ips = await self._addresses(host)
        except (DnsTimeout, ServFail):
            return [], True
        except DnsError:
            return [], False
        return [Destination(host, ip, self._port(ip, route), pref) for ip in ips], False

    async def _mx_records(self, domain: str, name: str) -> list[MxRecord]:
        """``name``'s MX records for ``domain``'s mail, as the resolver gave
        them; a failure, NXDOMAIN or null MX is recorded and raised."""
        try:
            records = await self.ctx.resolver.mx(name)  # type: ignore[union-attr]
        except NXDomain:
            self._answer(domain, name, "nxdomain")
            raise RouteFailure(*DOMAIN_NOT_FOUND, permanent=True) from None
        except DnsError as exc:
            self._answer(domain, name, "timeout" if isinstance(exc, DnsTimeout) else "servfail")
            raise RouteFailure(*DNS_TEMPFAIL, permanent=False) from None
        if any(r.is_null for r in records):
            self._answer(domain, name, "null-mx", records)
            raise RouteFailure(*NULL_MX, permanent=True)
        if not records:
            self._answer(domain, name, "no-mx")
        return records

    def _answer(self, domain: str, name: str, outcome: ev.MxOutcome,
                records: list[MxRecord] | tuple = (),
                unresolved: list[str] | tuple = ()) -> None:
        self.ctx.sink.emit(ev.MxAnswer(
            t=self.ctx.now(), host=self.ctx.hostname, domain=domain, name=name,
            outcome=outcome, preferences=tuple(r.preference for r in records),
            exchanges=tuple(r.exchange for r in records), unresolved=tuple(unresolved)))
