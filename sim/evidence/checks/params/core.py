"""Parameters of the core checks (conservation; bounce-dsn takes none).

The parameter models and the causes their counterexamples name: what validating a scenario needs
of :mod:`sim.evidence.checks.core`, kept apart from the checks so that ``mxsim validate`` loads
neither the checks nor the evidence model.  The checks use these same classes.
"""
from __future__ import annotations

from pydantic import Field

from sim.evidence.checks.params import Params


class ConservationParams(Params):
    duplicates_fail: bool = Field(
        False, description="also fail when a (trace, rcpt) reached a mailbox more than once")


#: The parameter model of each check here (a check missing takes none).
PARAMS: dict[str, type[Params]] = {
    "conservation": ConservationParams,
}

#: The causes each check here names in its counterexamples (what an
#: ``expect: violated`` may give as ``because:``), with their meanings.
CAUSES: dict[str, dict[str, str]] = {
    "conservation": {
        "dropped-over-limit": "told 250, then dropped by the host's recipient limit",
        "never-queued": "told 250, then never queued, delivered, relayed, bounced or discarded",
        "relayed-unconfirmed": "relayed to a next hop in the log that never accepted it",
        "bounced-without-dsn": "bounced without a DSN to a non-null sender",
        "discarded-unnamed": "discarded without a named policy",
        "duplicate": "delivered more than once (with duplicates_fail)"},
}
