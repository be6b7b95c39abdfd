"""Check parameters completed from facts the scenario already states.

An expectation may leave out parameters a check needs when the scenario
itself says them.  The judge, not the wiring, knows which: the pipeline
hands over what each host is configured with, and :func:`complete_params`
fills in the rest before the expectation is written into the log (so a
report rebuilt from ``events.jsonl`` alone judges with the same values).

Today one check needs this: ``retry-discipline`` gets ``per_host`` bounds
(minimum and maximum backoff, shortest lifetime) from each host's retry
schedule, plus a ``tolerance`` for how delivery rounds are measured.
"""
from __future__ import annotations

from typing import Any, Mapping

from mta.delivery.client import DeliveryConfig

#: Slack on retry-discipline bounds derived from the presets: gaps are
#: measured between the starts of delivery rounds, and a round that ends
#: deferred may first wait out two connect timeouts (two MX addresses).
ROUND_SLACK = 2 * DeliveryConfig().connect_timeout

#: What a host is configured to retry with: its schedule (anything with
#: ``min_backoff``, ``max_backoff`` and ``lifetime``) and per-domain lifetimes.
HostRetry = Mapping[str, tuple[Any, Mapping[str, float]]]


def complete_params(guarantee: str, params: Mapping[str, Any],
                    retry_by_host: HostRetry) -> dict[str, Any]:
    """``params`` of an expectation of ``guarantee``, completed from the
    hosts' configuration; given keys always win."""
    out = dict(params)
    if guarantee == "retry-discipline" and not {"min_backoff", "max_backoff",
                                                "lifetime"} <= set(out):
        derived = {}
        for host, (schedule, lifetimes) in sorted(retry_by_host.items()):
            derived[host] = {"min_backoff": schedule.min_backoff,
                             "max_backoff": schedule.max_backoff,
                             "lifetime": min([schedule.lifetime, *lifetimes.values()])}
        given = out.get("per_host", {}) or {}
        out["per_host"] = {h: dict(derived.get(h, {}), **given.get(h, {}))
                           for h in sorted(set(derived) | set(given))}
        out.setdefault("tolerance", ROUND_SLACK)
    return out
