"""Parameters of the SMTP conformance checks (reply-codes, full-logging).

The parameter models and the causes their counterexamples name: what validating a scenario needs
of :mod:`sim.evidence.checks.smtp`, kept apart from the checks so that ``mxsim validate`` loads
neither the checks nor the evidence model.  The checks use these same classes.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from sim.evidence.checks.params import Hosts, Params, Text


class ReplyCodesParams(Params):
    stage_classes: dict[str, Literal[4, 5]] = Field(
        {}, description="policy stage -> the reply class its refusals must have, over "
                        "the defaults (greylist 4, relay 5, lockdown 5)")
    hosts: Hosts | None = Field(None, description="hosts judged (default: all)")


class FullLoggingParams(Params):
    hosts: Hosts | None = Field(None, description="hosts judged (default: all)")
    maillog: Text | None = Field(None, description="a maillog file (Postfix syslog format) to "
                                                   "judge; default: the run's own, rendered "
                                                   "from the event log")


#: The parameter model of each check here (a check missing takes none).
PARAMS: dict[str, type[Params]] = {
    "reply-codes": ReplyCodesParams,
    "full-logging": FullLoggingParams,
}

#: The causes each check here names in its counterexamples (none so far: an
#: ``expect: violated`` of these checks cannot give ``because:``).
CAUSES: dict[str, dict[str, str]] = {}
