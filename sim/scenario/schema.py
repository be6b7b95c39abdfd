"""The scenario file format: pydantic v2 models, unknown keys forbidden.

A scenario describes one simulated world and what should happen in it::

    name, description, seed, duration
    hosts:        machines with an address, a link (latency, bandwidth,
                  up/down schedule) and access-network rules for port 25
    dns:          zone text in ordinary zone-file syntax, optional outages
    roles:        mail roles placed on hosts, with their configuration
                  (see :mod:`sim.scenario.roles`)
    traffic:      actors that send mail, spam, probe or dial in
                  (see :mod:`sim.scenario.traffic`)
    expectations: guarantee IDs (docs/catalogue.md) expected to hold or to be
                  violated, with parameters for the check

Cross-references (a role's host, an interception host, an actor's host)
are checked here too, so a validated scenario can be built without
surprises.  docs/scenarios.md documents every field with an example.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Field, ValidationInfo, model_validator

from mta.units import format_duration
from sim.scenario.roles import Role
from sim.scenario.traffic import Actor
from sim.scenario.types import (Bandwidth, Duration, HostName, IPv4, Strict, Window, shorthand)

# The guarantee catalogue (docs/catalogue.md), in its order.  A scenario may
# only name these; tests/test_scenario_schema.py keeps the list in step.
GUARANTEE_IDS: tuple[str, ...] = (
    "conservation", "retry-discipline", "bounce-dsn", "mx-order", "reply-codes",
    "mx-fallback", "sender-gives-up", "dialup-primary-loses-mail", "queueing-server-etrn",
    "filters-on-every-mx", "no-open-relay", "no-relay-via-isp-outbound",
    "feed-virus-deleted", "feed-greylisting", "feed-spam-levels", "feed-queue-2d",
    "feed-latency-20s", "feed-lockdown",
    "relay-default-deny", "pop-before-smtp", "sender-affiliated", "alt-port-2525",
    "auth-required", "max-size-30mb", "max-recipients-30", "dnsbl-check",
    "blocked-attachments", "full-logging", "port25-interception",
    "dialup-no-bounce", "connectivity-probe", "smtp-on-demand-finger", "etrn-flush",
    "smart-host",
)

# Expected in every scenario unless the file says why not (``waive``).
CROSS_CUTTING: tuple[str, ...] = ("conservation", "retry-discipline", "bounce-dsn", "mx-order")

GuaranteeId = Literal[GUARANTEE_IDS]  # type: ignore[valid-type]


# --------------------------------------------------------------------------
# Link schedules: when a host's link is up
# --------------------------------------------------------------------------

class AlwaysSchedule(Strict):
    """The link never goes down (the default)."""

    kind: Literal["always"] = "always"


def _in_order(windows: list[Window], key: str) -> None:
    for i in range(1, len(windows)):
        if windows[i].start < windows[i - 1].end:
            raise ValueError(
                f"expected '{key}' windows in time order without overlap: {key}[{i}] starts at "
                f"{format_duration(windows[i].start)}, before {key}[{i - 1}] ends at "
                f"{format_duration(windows[i - 1].end)}")


class OutagesSchedule(Strict):
    """Up except during the listed windows."""

    kind: Literal["outages"]
    outages: list[Window] = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> "OutagesSchedule":
        _in_order(self.outages, "outages")
        return self


class DialupSchedule(Strict):
    """Up for ``up`` every ``every``, first at ``start``; each window's start
    moves by a uniform draw in [0, ``jitter``] from the run's seed."""

    kind: Literal["dialup"]
    up: Duration
    every: Duration
    start: Duration = 0.0
    jitter: Duration = 0.0

    @model_validator(mode="after")
    def _fits(self) -> "DialupSchedule":
        if self.up <= 0:
            raise ValueError("expected 'up' above zero")
        if self.every <= self.up + self.jitter:
            raise ValueError(
                f"expected 'every' longer than 'up' plus 'jitter' "
                f"({format_duration(self.up + self.jitter)}), got {format_duration(self.every)}")
        return self


class RandomSchedule(Strict):
    """Alternating up and down spells with exponential lengths (seeded)."""

    kind: Literal["random"]
    mean_up: Duration
    mean_down: Duration
    initially: Literal["up", "down"] = "up"

    @model_validator(mode="after")
    def _positive(self) -> "RandomSchedule":
        if self.mean_up <= 0 or self.mean_down <= 0:
            raise ValueError("expected 'mean_up' and 'mean_down' above zero")
        return self


class IntervalsSchedule(Strict):
    """Up only during the listed windows, down the rest of the time."""

    kind: Literal["intervals"]
    up: list[Window]

    @model_validator(mode="after")
    def _ordered(self) -> "IntervalsSchedule":
        _in_order(self.up, "up")
        return self


def _schedule_shorthand(value: object) -> object:
    """``schedule: always`` means ``{kind: always}``."""
    return {"kind": value} if isinstance(value, str) else value


Schedule = Annotated[
    Union[AlwaysSchedule, OutagesSchedule, DialupSchedule, RandomSchedule, IntervalsSchedule],
    Field(discriminator="kind"),
    shorthand(_schedule_shorthand, Literal["always"], AlwaysSchedule, OutagesSchedule,
              DialupSchedule, RandomSchedule, IntervalsSchedule),
]


class Link(Strict):
    """A host's attachment to the network.

    ``down_connect``: what a new connection meets while the link is down
    (``timeout``: packets vanish, the client's connect timer fires;
    ``refuse``: immediate refusal).  ``down_open``: what happens to open
    connections when it goes down (``reset`` or ``blackhole``).
    """

    latency: Duration = 0.01
    bandwidth: Bandwidth | None = None
    schedule: Schedule = AlwaysSchedule()
    down_connect: Literal["timeout", "refuse"] = "timeout"
    down_open: Literal["reset", "blackhole"] = "reset"


class Intercept(Strict):
    """Outbound port 25 is transparently redirected to ``intercepted_by``."""

    intercepted_by: HostName


class Access(Strict):
    """Access-network rules for the host's outbound connections."""

    port25: Literal["open", "blocked"] | Intercept = "open"


class Host(Strict):
    """One simulated machine."""

    name: HostName
    address: IPv4
    link: Link = Link()
    access: Access = Access()
    description: str = ""


# --------------------------------------------------------------------------
# DNS
# --------------------------------------------------------------------------

class DnsOutage(Window):
    """The resolver fails during the window: ``timeout`` or ``servfail``."""

    mode: Literal["timeout", "servfail"] = "timeout"


class Dns(Strict):
    """Zone text (ordinary zone-file syntax; several ``$ORIGIN`` sections
    allowed), answered with ``latency``, failing during ``outages``."""

    zones: str
    latency: Duration = 0.005
    outages: list[DnsOutage] = []


# --------------------------------------------------------------------------
# Expectations
# --------------------------------------------------------------------------

class Expectation(Strict):
    """A guarantee from the catalogue and whether this scenario expects it
    to hold or to be violated; ``params`` go to the check."""

    guarantee: GuaranteeId
    expect: Literal["holds", "violated"] = "holds"
    params: dict[str, Any] = {}
    why: str = ""
    because: str | None = Field(
        None, description="with expect: violated, the cause the violation must show "
                          "(one of the check's causes); other failures do not meet it")

    @model_validator(mode="after")
    def _because_needs_violated(self) -> "Expectation":
        if self.because is not None and self.expect != "violated":
            raise ValueError("'because' names the cause of an expected violation: it needs "
                             "'expect: violated'")
        return self


# --------------------------------------------------------------------------
# The scenario
# --------------------------------------------------------------------------

class Scenario(Strict):
    """One scenario file."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]*$",
                               description="lower-case name; also the report folder")]
    description: str = ""
    seed: int = 1
    duration: Duration
    hosts: list[Host] = Field(min_length=1)
    dns: Dns | None = None
    roles: list[Role] = []
    traffic: list[Actor] = []
    expectations: list[Expectation] = []
    waive: dict[GuaranteeId, str] = Field(
        default={}, description="cross-cutting guarantees not expected here, with the reason")

    @model_validator(mode="after")
    def _positive_duration(self) -> "Scenario":
        if self.duration <= 0:
            raise ValueError("expected a duration above zero")
        return self

    @model_validator(mode="after")
    def _references(self, info: ValidationInfo) -> "Scenario":
        """Names must be unique and every reference must point at a host.

        The loader asks to skip this (context ``{"references": False}``) and
        reports every problem with its own key path instead of the first.
        """
        if (info.context or {}).get("references", True) is False:
            return self
        problems = cross_reference_problems(self)
        if problems:
            raise ValueError(problems[0][1])  # the loader reports all, with paths
        return self

    def host(self, name: str) -> Host:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)

    def missing_cross_cutting(self) -> list[str]:
        """Cross-cutting guarantees neither expected nor waived (a warning)."""
        named = {e.guarantee for e in self.expectations} | set(self.waive)
        return [g for g in CROSS_CUTTING if g not in named]


def cross_reference_problems(sc: Scenario) -> list[tuple[tuple, str]]:
    """``[(key path, message)]`` for every dangling or duplicate reference."""
    out: list[tuple[tuple, str]] = []
    names: dict[str, int] = {}
    addresses: dict[str, int] = {}
    for i, h in enumerate(sc.hosts):
        if h.name in names:
            out.append((("hosts", i, "name"),
                        f"expected a unique host name, {h.name!r} is also hosts[{names[h.name]}]"))
        names.setdefault(h.name, i)
        if h.address in addresses:
            out.append((("hosts", i, "address"),
                        f"expected a unique address, {h.address} is also "
                        f"hosts[{addresses[h.address]}]"))
        addresses.setdefault(h.address, i)
    known = ", ".join(sorted(names))

    def need(path: tuple, name: str | None) -> None:
        if name is not None and name not in names:
            out.append((path, f"expected the name of a host in hosts ({known}), got {name!r}"))

    for i, h in enumerate(sc.hosts):
        if isinstance(h.access.port25, Intercept):
            need(("hosts", i, "access", "port25", "intercepted_by"), h.access.port25.intercepted_by)
    listening: dict[tuple[str, int], int] = {}
    for i, r in enumerate(sc.roles):
        need(("roles", i, "host"), r.host)
        for port in r.ports:
            other = listening.setdefault((r.host, port), i)
            if other != i:
                out.append((("roles", i, "ports"),
                            f"expected one role per host and port, roles[{other}] already "
                            f"listens on {r.host} port {port}"))
        for key, name in r.host_references():
            need(("roles", i) + key, name)
    for i, a in enumerate(sc.traffic):
        need(("traffic", i, "host"), a.host)
        for key, name in a.host_references():
            need(("traffic", i) + key, name)
    return out
