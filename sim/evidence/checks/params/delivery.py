"""Parameters of the delivery checks (mx-fallback, sender-gives-up, dialup-primary-loses-mail,
queueing-server-etrn, filters-on-every-mx).

The parameter models and the causes their counterexamples name: what validating a scenario needs
of :mod:`sim.evidence.checks.delivery`, kept apart from the checks so that ``mxsim validate``
loads neither the checks nor the evidence model.  The checks use these same classes.
"""
from __future__ import annotations

from pydantic import Field

from sim.evidence.checks.params import Duration, Host, Hosts, Params, Text, Texts


class MxFallbackParams(Params):
    primary: Host = Field(description="the primary MX")
    secondary: Host = Field(description="the secondary MX")
    grace: Duration = Field(
        "1h", description="a copy still queued on the secondary at the end fails only if "
                          "the primary had been up for longer than this")


class SenderGivesUpParams(Params):
    senders: Hosts | None = Field(
        None, description="sending hosts judged (default: every host that submitted mail "
                          "without SMTP, DSNs aside)")
    min_retry_span: Duration = Field(
        "1h", description="a give-up comes at least this long after queueing, after at "
                          "least two rounds")


class DialupPrimaryParams(Params):
    primary: Host = Field(description="the dial-up primary MX")
    domain: Text = Field(description="the customer's mail domain")


class QueueingServerParams(Params):
    queue_server: Host = Field(description="the ISP's queueing server")
    delivery_server: Host = Field(description="the dial-up customer's server")
    domain: Text = Field(description="the customer's mail domain")
    lifetime: Duration = Field(
        "5d", description="only copies queued during an outage longer than this may bounce")
    within: Duration = Field(
        60, description="each ETRN is followed this soon by attempts and a connection")


class FiltersParams(Params):
    mxs: Hosts = Field(description="every MX host of the domain")
    blocked: Texts = Field(description="addresses or CIDR blocks the filter blocks")


#: The parameter model of each check here (a check missing takes none).
PARAMS: dict[str, type[Params]] = {
    "mx-fallback": MxFallbackParams,
    "sender-gives-up": SenderGivesUpParams,
    "dialup-primary-loses-mail": DialupPrimaryParams,
    "queueing-server-etrn": QueueingServerParams,
    "filters-on-every-mx": FiltersParams,
}

#: The causes each check here names in its counterexamples (what an
#: ``expect: violated`` may give as ``because:``), with their meanings.
CAUSES: dict[str, dict[str, str]] = {
    "dialup-primary-loses-mail": {
        "sender-gave-up-while-link-down": "a sender's queue lifetime ran out while the "
                                          "primary's link was down",
        "sender-gave-up-while-link-up": "a sender gave up on transient failures while the link "
                                        "was up",
        "rejected-permanently": "a permanent (5xx) refusal, not a give-up"},
    "filters-on-every-mx": {
        "blocked-mail-delivered": "mail a blocked client handed to one of the MX hosts reached "
                                  "a mailbox"},
}
