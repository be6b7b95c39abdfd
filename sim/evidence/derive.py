"""Check parameters completed from facts the scenario already states.

An expectation may leave out parameters a check needs when the scenario
itself says them.  The judge, not the wiring, knows which: the pipeline
hands over what each host is configured with, and :func:`complete_params`
fills in the rest before the expectation is written into the log (so a
report rebuilt from ``events.jsonl`` alone judges with the same values).

Today one check needs this: ``retry-discipline`` gets ``per_host``, what the
scenario says each queueing host retries with (preset name, the settings it
changes, per-domain lifetimes: :func:`declared_retry`), never the
component's schedule object; the check's own table
(:mod:`sim.evidence.retry_bounds`) turns that into bounds.  It also gets a
``round_slack`` for how delivery rounds are measured.
"""
from __future__ import annotations

from typing import Any, Mapping

from mta.delivery.client import DeliveryConfig
from sim.scenario import traffic as st
from sim.scenario.schema import Scenario

#: Slack on retry-discipline's upper bounds: gaps are measured between the
#: starts of delivery rounds, and a round that ends deferred may first wait
#: out two connect timeouts (two MX addresses).
ROUND_SLACK = 2 * DeliveryConfig().connect_timeout

#: Host -> {"preset": name, "settings": {key: value}, "lifetimes": {domain: value}}.
HostRetry = Mapping[str, Mapping[str, Any]]


def declared_retry(sc: Scenario) -> dict[str, dict[str, Any]]:
    """What the scenario says each queueing host retries with: its first
    role's retry setting, or else its first sender's (the rule the wiring
    follows when it gives each host one queue)."""
    out: dict[str, dict[str, Any]] = {}
    settings = [(role.host, role.retry) for role in sc.roles]
    settings += [(a.host, a.retry) for a in sc.traffic if isinstance(a, st.Sender)]
    for host, retry in settings:
        if host not in out:
            out[host] = {"preset": retry.preset, "settings": dict(sorted(retry.overrides().items())),
                         "lifetimes": dict(sorted(retry.lifetimes.items()))}
    return out


def complete_params(guarantee: str, params: Mapping[str, Any],
                    retry_by_host: HostRetry) -> dict[str, Any]:
    """``params`` of an expectation of ``guarantee``, completed from the
    hosts' configuration; given keys always win."""
    out = dict(params)
    if guarantee == "retry-discipline":
        given = out.get("per_host", {}) or {}
        out["per_host"] = {h: dict(given.get(h) or retry_by_host[h])
                           for h in sorted(set(retry_by_host) | set(given))}
        out.setdefault("round_slack", ROUND_SLACK)
    return out
