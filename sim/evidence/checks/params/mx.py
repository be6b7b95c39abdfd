"""Parameters of the mx-order check.

The parameter models and the causes their counterexamples name: what validating a scenario needs
of :mod:`sim.evidence.checks.mx`, kept apart from the checks so that ``mxsim validate`` loads
neither the checks nor the evidence model.  The checks use these same classes.
"""
from __future__ import annotations

from pydantic import Field

from sim.evidence.checks.params import Count, Duration, Number, Params, Texts


class MxOrderParams(Params):
    null_mx_domains: Texts = Field(
        [], description="domains that must be treated as a null MX (RFC 7505) even "
                        "where no answer for them is in the log")
    null_mx_max_delay: Duration = Field(
        60, description="longest wait from queueing to the 556 bounce of null-MX mail")
    shuffle_min_rounds: Count = Field(
        20, description="rounds whose first choice was a tie before the shuffle is judged")
    shuffle_significance: Number = Field(
        0.001, description="chance of a false alarm per tie group: a tied host that "
                           "comes first this rarely under a fair shuffle fails the check")
    address_limit: Count = Field(
        5, description="addresses a round may stop after without trying the rest "
                       "(Postfix smtp_mx_address_limit)")


#: The parameter model of each check here (a check missing takes none).
PARAMS: dict[str, type[Params]] = {
    "mx-order": MxOrderParams,
}

#: The causes each check here names in its counterexamples (what an
#: ``expect: violated`` may give as ``because:``), with their meanings.
CAUSES: dict[str, dict[str, str]] = {
    "mx-order": {
        "no-answer": "a round at an MX preference with no MX answer before it",
        "not-in-answer": "an MX tried that the answer did not list, or at another preference",
        "relay-not-below-own": "a relaying MX tried a preference not below its own",
        "not-most-preferred": "a round that did not start at the most preferred usable MX",
        "out-of-order": "a more preferred MX tried after a less preferred one",
        "no-fallback": "a round deferred for a network reason before trying every usable MX",
        "not-shuffled": "a host of a tie group first too rarely for a fair shuffle",
        "null-mx-not-failed": "null-MX mail not failed at once with 556 5.1.10"},
}
