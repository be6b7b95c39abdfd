"""Policy stages: pure decisions at connect, HELO, MAIL, RCPT and DATA.

See :mod:`mta.policy.chain` for how stages are combined and how DNS answers
reach them, and :mod:`mta.roles` for the chains each server role builds.
"""
from mta.policy.access import ClientBlockList, ConnectAllowList, Networks
from mta.policy.chain import Outcome, PolicyChain, Stage, prefetch
from mta.policy.decision import (Action, Decision, Facts, Lookup, LookupResult,
                                 Note, Phase, PolicyError)
from mta.policy.dnsbl import DnsblStage, DnsblZone
from mta.policy.helo import HeloFqdnStage
from mta.policy.recipients import RecipientLimit
from mta.policy.relay import RelayControl
from mta.policy.size import SizeLimit

__all__ = [
    "Action", "ClientBlockList", "ConnectAllowList", "Decision", "DnsblStage",
    "DnsblZone", "Facts", "HeloFqdnStage", "Lookup", "LookupResult", "Networks",
    "Note", "Outcome", "Phase", "PolicyChain", "PolicyError", "RecipientLimit",
    "RelayControl", "SizeLimit", "Stage", "prefetch",
]
