"""Projections: state folded from an event log.  Pure functions of the log.

This module is the public face of the projections; each concept lives in
its own module and is re-exported here, so ``from sim.evidence.projections
import ...`` keeps working:

* :mod:`sim.evidence.lifecycle`: :func:`lifecycles` per (host, msg, rcpt)
  from acceptance to fate, with every attempt and deferral;
  :func:`outcomes` per (trace, rcpt) across hops, the end-to-end fate;
  :func:`counts`; the fate constants and address helpers;
* :mod:`sim.evidence.queue_replay`: :func:`replay` (every host's queue and
  every link's state at time t), :func:`queue_depths`,
  :func:`queue_intervals` (pandas);
* :mod:`sim.evidence.links`: :func:`link_periods`, :func:`down_periods`,
  :func:`smtp_transactions`, :func:`run_bounds`.

Time convention: an event stamped exactly ``t`` has happened "at t", so
``replay(events, t)`` includes it.
"""
from __future__ import annotations

from mta import events as E  # noqa: F401 - kept importable as before the split
from sim.evidence.lifecycle import (  # noqa: F401 - re-exports
    BOUNCED, BOUNCED_NO_DSN, BOUNCED_NULL_SENDER, DELIVERED, DISCARDED, DISCARDED_UNNAMED,
    LOSS_FATES, LOST, QUEUED, RELAYED, RELAYED_OUT, RELAYED_UNCONFIRMED, TERMINAL, _PRIORITY,
    Outcome, RecipientLife, counts, domain_of, hosts_in_log, in_domain, is_null_sender,
    lifecycles, outcomes)
from sim.evidence.links import (  # noqa: F401 - re-exports
    LinkPeriod, Transaction, down_periods, link_periods, run_bounds, smtp_transactions)
from sim.evidence.queue_replay import (  # noqa: F401 - re-exports
    QueueEntry, ReplayState, queue_depths, queue_intervals, replay)
