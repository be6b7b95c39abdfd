"""Parameters of the relay checks (open relay, ISP outbound, AUTH, recipient and size limits,
smart host).

The parameter models and the causes their counterexamples name: what validating a scenario needs
of :mod:`sim.evidence.checks.relay`, kept apart from the checks so that ``mxsim validate`` loads
neither the checks nor the evidence model.  The checks use these same classes.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from sim.evidence.checks.params import Count, Host, Hosts, Params, Texts


class RelayRole(Params):
    domains: Texts = Field([], description="domains this host serves (relays for anyone)")
    networks: Texts = Field([], description="client addresses or CIDR blocks it relays for")


class NoOpenRelayParams(Params):
    roles: dict[Host, RelayRole] | None = Field(
        None, description="host -> what it may relay for; or give hosts, domains, networks")
    hosts: Hosts | None = Field(None, description="hosts that all share domains and networks")
    domains: Texts = Field([], description="with hosts: the domains they serve")
    networks: Texts = Field([], description="with hosts: the networks they relay for")

    @model_validator(mode="after")
    def _roles_or_hosts(self) -> "NoOpenRelayParams":
        if self.roles is None and self.hosts is None:
            raise ValueError("expected 'roles' (host -> domains, networks) or 'hosts'")
        return self

    def by_host(self) -> dict[str, RelayRole]:
        """What each judged host may relay for."""
        if self.roles is not None:
            return dict(self.roles)
        role = RelayRole(domains=self.domains, networks=self.networks)
        return {h: role for h in self.hosts or []}


class RelayParams(Params):
    relay: Host = Field(description="the relay judged")
    domains: Texts = Field([], description="domains the relay serves")


class MaxRecipientsParams(Params):
    relay: Host = Field(description="the relay judged")
    limit: Count = Field(30, description="most recipients a message may be relayed to")
    mode: Literal["conformant", "documented"] | None = Field(
        None, description="conformant: each RCPT beyond the limit gets 452 4.5.3; "
                          "documented: accepted and dropped (conservation reports it); "
                          "default: either")


class MaxSizeParams(Params):
    relay: Host = Field(description="the relay judged")
    limit: Count = Field(30 * 1024 * 1024, description="largest message in bytes (30 MiB)")


class IspOutboundParams(Params):
    isp: Host = Field(description="the ISP's outbound server")
    customer_ips: Texts = Field(description="the customer servers' addresses or CIDR blocks")
    customer: Host | None = Field(None, description="the customer server, to judge its "
                                                    "deliveries too")
    domains: Texts = Field([], description="the ISP's own domains")


class SmartHostParams(Params):
    smart_host: Host = Field(description="the provider's smart host")
    customer: Host = Field(description="the customer's mailer")


#: The parameter model of each check here (a check missing takes none).
PARAMS: dict[str, type[Params]] = {
    "no-open-relay": NoOpenRelayParams,
    "auth-required": RelayParams,
    "max-recipients-30": MaxRecipientsParams,
    "max-size-30mb": MaxSizeParams,
    "no-relay-via-isp-outbound": IspOutboundParams,
    "smart-host": SmartHostParams,
}

#: The causes each check here names in its counterexamples (none so far: an
#: ``expect: violated`` of these checks cannot give ``because:``).
CAUSES: dict[str, dict[str, str]] = {}
