"""Parameters of the on-demand release checks (dialup-no-bounce, etrn-flush, smtp-on-demand-
finger, connectivity-probe).

The parameter models and the causes their counterexamples name: what validating a scenario needs
of :mod:`sim.evidence.checks.ondemand`, kept apart from the checks so that ``mxsim validate``
loads neither the checks nor the evidence model.  The checks use these same classes.
"""
from __future__ import annotations

from pydantic import Field

from sim.evidence.checks.params import Duration, Host, Hosts, Params, Text


class DialupNoBounceParams(Params):
    domain: Text = Field(description="the dial-up customer's mail domain")
    lifetime: Duration = Field("5d", description="no bounce sooner than this after queueing")
    tolerance: Duration = Field(1, description="slack on the lifetime")


class ReleaseParams(Params):
    exchangers: Hosts = Field(description="the exchangers that hold the domain's mail")
    domain: Text = Field(description="the dial-up customer's mail domain")
    within: Duration = Field(60, description="each release is followed this soon by an "
                                             "attempt of every held copy")


class ProbeParams(Params):
    exchangers: Hosts = Field(description="the exchangers that probe the customer")
    customer: Host = Field(description="the host whose link comes and goes")
    domain: Text = Field(description="the customer's mail domain")
    probe_interval: Duration = Field(description="how often the exchangers probe")
    tolerance: Duration = Field(1, description="slack on the interval")


#: The parameter model of each check here (a check missing takes none).
PARAMS: dict[str, type[Params]] = {
    "dialup-no-bounce": DialupNoBounceParams,
    "etrn-flush": ReleaseParams,
    "smtp-on-demand-finger": ReleaseParams,
    "connectivity-probe": ProbeParams,
}

#: The causes each check here names in its counterexamples (none so far: an
#: ``expect: violated`` of these checks cannot give ``because:``).
CAUSES: dict[str, dict[str, str]] = {}
