"""Parameters of the dnsbl-check check.

The parameter models and the causes their counterexamples name: what validating a scenario needs
of :mod:`sim.evidence.checks.dnsbl`, kept apart from the checks so that ``mxsim validate`` loads
neither the checks nor the evidence model.  The checks use these same classes.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from sim.evidence.checks.params import Host, Params, Texts


class DnsblParams(Params):
    host: Host = Field(description="the server that consults the DNSBL")
    listed: Texts = Field([], description="addresses or CIDR blocks the DNSBL lists")
    fail: Literal["open", "closed"] | None = Field(
        None, description="what a list timeout must do: let the client on, or refuse it")


#: The parameter model of each check here (a check missing takes none).
PARAMS: dict[str, type[Params]] = {
    "dnsbl-check": DnsblParams,
}

#: The causes each check here names in its counterexamples (none so far: an
#: ``expect: violated`` of these checks cannot give ``because:``).
CAUSES: dict[str, dict[str, str]] = {}
