"""HELO/EHLO name checks.

A smart host that relays for customer mailers requires a fully qualified
HELO name (the dial-up service says "a name that is not fully qualified is refused").  The
reply is Postfix's ``reject_non_fqdn_helo_hostname``:
"504 5.5.2 <name>: Helo command rejected: need fully-qualified hostname".
Address literals (``[192.0.2.1]``) are accepted, as Postfix does.

The refusal is given to HELO/EHLO itself (``smtpd_delay_reject = no``
behaviour), so the session has no HELO name and MAIL gets 503.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from mta.addresses import is_fqdn
from mta.policy.access import Networks
from mta.policy.chain import Stage
from mta.policy.decision import Decision, Facts

NON_FQDN_CODE = 504
NON_FQDN_STATUS = "5.5.2"


@dataclass
class HeloFqdnStage(Stage):
    """Refuse HELO/EHLO names that are not fully qualified."""

    exempt: Networks = field(default_factory=Networks)
    name: str = "helo_fqdn"

    def on_helo(self, facts: Facts, name: str) -> Decision | None:
        if facts.client_ip in self.exempt or is_fqdn(name):
            return None
        shown = name if len(name) <= 100 else name[:100] + "..."
        return Decision.reject(self.name, NON_FQDN_CODE, NON_FQDN_STATUS,
                               f"<{shown}>: Helo command rejected: "
                               "need fully-qualified hostname")
