"""Counterexample timelines: the events behind a failed guarantee.

:func:`timeline` gathers every event of a counterexample's message (and the
events the check named) in log order; :func:`condense_rounds` folds long
runs of identical delivery rounds; :func:`row_details` is one row's
details.  Used by both renderers and by :mod:`sim.report.failures`.
"""
from __future__ import annotations

import json
from typing import Any

from mta import events as E
from mta.events.codec import to_dict
from sim.report.tables import fmt_t

_TIMELINE_MAX = 60    # events shown in one counterexample timeline


def row_details(d: dict[str, Any]) -> str:
    """A timeline row's fields other than time, host and kind, as ``k=v`` text."""
    if d["kind"] == "repeated":
        return d["note"]
    skip = {"t", "host", "kind"}
    parts = []
    for k in sorted(d):
        if k in skip or d[k] in (None, "", [], {}):
            continue
        v = d[k]
        if isinstance(v, list):
            v = ",".join(map(str, v))
        parts.append(f"{k}={v}")
    return " ".join(parts)


def timeline(events: list[E.Event], c: dict[str, Any]) -> list[dict[str, Any]]:
    """All events of the counterexample's message (by trace, and by msg on
    its host), plus the events the check named, in time order."""
    rows: dict[str, tuple[int, dict[str, Any]]] = {}
    trace, msg = c.get("trace"), c.get("msg")
    named = {json.dumps(d, sort_keys=True) for d in c.get("events", [])}
    stamps = {(d["t"], d["host"], d["kind"]) for d in c.get("events", [])}
    for seq, ev in enumerate(events):
        mine = (trace and getattr(ev, "trace", None) == trace) or \
            (trace and getattr(ev, "about_trace", None) == trace) or \
            (msg and getattr(ev, "msg", None) == msg)
        if not mine and (float(ev.t), ev.host, ev.kind) not in stamps:
            continue     # cheap filter: canonical dicts only for candidates
        d = to_dict(ev)
        key = json.dumps(d, sort_keys=True)
        if mine or key in named:
            rows.setdefault(key, (seq, d))
    # Log order within one instant: that is the order things happened.
    out = [d for _, d in sorted(rows.values(), key=lambda sd: (sd[1]["t"], sd[0]))]
    out = condense_rounds(out)
    if len(out) > _TIMELINE_MAX:
        # Keep both ends: how it started, and how it ended (the give-up).
        half = _TIMELINE_MAX // 2
        gap = {"t": out[half]["t"], "host": out[half]["host"], "kind": "repeated",
               "note": f"{len(out) - 2 * half} events until {fmt_t(out[-half]['t'])} left out"}
        out = out[:half] + [gap] + out[-half:]
    return out


def _round_key(attempt: dict[str, Any], deferred: dict[str, Any]) -> tuple | None:
    """What makes two delivery rounds "the same" in a timeline."""
    if attempt["kind"] != "attempt_started" or deferred["kind"] != "deferred":
        return None
    return (attempt["host"], attempt.get("msg"), attempt.get("dest_host"),
            deferred.get("rcpt"), deferred.get("code"), deferred.get("text"))


def condense_rounds(rows: list[dict[str, Any]], at_least: int = 4) -> list[dict[str, Any]]:
    """Collapse runs of identical delivery rounds (an attempt, then the same
    deferral) into first round, one summary row, last round.

    A sender retrying every 30 minutes for five days would otherwise fill
    the timeline with hundreds of rows that say the same thing.
    """
    out: list[dict[str, Any]] = []
    i, n = 0, len(rows)
    while i < n:
        key = _round_key(rows[i], rows[i + 1]) if i + 1 < n else None
        j = i
        while key is not None and j + 1 < n and _round_key(rows[j], rows[j + 1]) == key:
            j += 2
        rounds = (j - i) // 2
        if key is None or rounds < at_least:
            out.append(rows[i])
            i += 1
            continue
        first_mid, last_mid = rows[i + 2], rows[j - 3]
        out += rows[i:i + 2]
        out.append({"t": first_mid["t"], "host": first_mid["host"], "kind": "repeated",
                    "note": f"{rounds - 2} more delivery rounds to {key[2]} until "
                            f"{fmt_t(last_mid['t'])}, each deferred: {key[4]} {key[5]}"})
        out += rows[j - 2:j]
        i = j
    return out

