"""Parameters of the restricted relays' access checks (POP-before-SMTP, sender affiliation,
alternative port, attachments, port 25 interception, default deny).

The parameter models and the causes their counterexamples name: what validating a scenario needs
of :mod:`sim.evidence.checks.relay_access`, kept apart from the checks so that ``mxsim
validate`` loads neither the checks nor the evidence model.  The checks use these same classes.
"""
from __future__ import annotations

from pydantic import Field

from sim.evidence.checks.params import Duration, Host, Hosts, Params, Text, Texts


#: The seed's list and the "etc." a careful provider adds (seed 003).
BLOCKED_DEFAULT = [".pif", ".bat", ".exe", ".scr", ".com", ".cmd", ".vbs", ".js", ".jar"]


class PopBeforeSmtpParams(Params):
    relay: Host = Field(description="the POP-before-SMTP relay")
    window: Duration = Field(5400.0, description="how long a login opens relaying (90 min)")
    domains: Texts = Field([], description="domains the relay serves (no grant needed)")
    networks: Texts = Field([], description="client networks it relays for without a login")


class SenderAffiliatedParams(Params):
    relay: Host = Field(description="the relay judged")
    owners: dict[str, Texts] = Field(description="user (AUTH or POP3) -> the domains it owns")
    window: Duration = Field(5400.0, description="the POP-before-SMTP grant window")


class AltPortParams(Params):
    relay: Host = Field(description="the relay with the alternative port")
    blocked_port: int = Field(25, description="the port the access ISP blocks")
    alt_port: int = Field(2525, description="the relay's alternative submission port")
    clients: Hosts = Field([], description="the client hosts judged (default: every client)")


class BlockedAttachmentsParams(Params):
    relay: Host = Field(description="the relay with the attachment rule")
    extensions: Texts = Field(BLOCKED_DEFAULT, description="file extensions refused")


class InterceptionParams(Params):
    client: Host = Field(description="the roaming client's host")
    client_ip: Text = Field(description="its address (the servers log connections by it)")
    relay: Host = Field(description="the relay the client means to reach")
    port: int = Field(25, description="the port the access ISP may redirect")


class DefaultDenyParams(Params):
    relay: Host = Field(description="the relay judged")
    domains: Texts = Field([], description="domains the relay serves")
    window: Duration = Field(5400.0, description="how long a POP3 login opens relaying "
                                                 "(POP-before-SMTP), 90 min")
    networks: Texts = Field([], description="client networks it relays for (mynetworks)")


#: The parameter model of each check here (a check missing takes none).
PARAMS: dict[str, type[Params]] = {
    "pop-before-smtp": PopBeforeSmtpParams,
    "sender-affiliated": SenderAffiliatedParams,
    "alt-port-2525": AltPortParams,
    "blocked-attachments": BlockedAttachmentsParams,
    "port25-interception": InterceptionParams,
    "relay-default-deny": DefaultDenyParams,
}

#: The causes each check here names in its counterexamples (what an
#: ``expect: violated`` may give as ``because:``), with their meanings.
CAUSES: dict[str, dict[str, str]] = {
    "alt-port-2525": {
        "no-fallback": "the client timed out on the blocked port and never tried the other one",
        "fallback-failed": "the client tried the other port but did not send",
        "not-accepted-on-alt-port": "the client says sent, but the relay accepted nothing there"},
}
