"""``mxsim replay DIR --at TIME``: every host's queue and link state at TIME.

TIME is seconds of simulated time or a duration such as ``36h``, ``2d4h``,
``90m``, ``1w`` (the grammar of :mod:`mta.units`); it cannot be negative.  The state is folded from events.jsonl (events stamped exactly
TIME count as happened).
"""
from __future__ import annotations

import argparse

from mta.units import format_duration, parse_duration
from sim.cli import UsageError
from sim.commands.report import log_path, print_out
from sim.evidence.log import LogError, read_jsonl
from sim.evidence.lifecycle import hosts_in_log
from sim.evidence.queue_replay import replay
from sim.report.tables import fmt_t


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("replay", help="show every queue and link at a simulated time",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("dir", metavar="DIR", help="run directory holding events.jsonl "
                                               "(or the path of an events.jsonl)")
    p.add_argument("--at", required=True, metavar="TIME",
                   help="simulated time: seconds, or e.g. 36h, 2d4h, 90m")
    return p


def render(events, t: float) -> str:
    """The text ``mxsim replay`` prints."""
    state = replay(events, t)
    queued_hosts = sorted({e.host for e in events if e.kind == "queued"})
    lines = [f"state at t={t:g} s ({fmt_t(t)})", "", "queues:"]
    if not queued_hosts:
        lines.append("  (no host queued any mail in this run)")
    for host in queued_hosts:
        q = state.queues.get(host, [])
        lines.append(f"  {host}: {len(q)} recipient{'s' if len(q) != 1 else ''}")
        for e in q:
            extra = ", held" if e.held else ""
            nxt = f", next attempt {fmt_t(e.next_attempt)}" if e.next_attempt is not None else ""
            lines.append(f"    {e.msg} {e.rcpt} (trace {e.trace}) since {fmt_t(e.since)}, "
                         f"{e.attempts} attempts{nxt}{extra}")
    lines += ["", "links:"]
    if not state.links:
        lines.append("  (no link changes in this run: every link up)")
    for (host, link), st in state.links.items():
        name = host if link == host else f"{host} ({link})"
        lines.append(f"  {name}: {st}")
    others = sorted(hosts_in_log(events) - set(queued_hosts) - {h for h, _ in state.links})
    if others:
        lines += ["", "other hosts (no queue, no link changes): " + ", ".join(others)]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        t = parse_duration(args.at)
    except ValueError as exc:
        raise UsageError(f"--at: {exc}") from None
    path = log_path(args.dir)
    try:
        events = read_jsonl(path)
    except LogError as exc:
        raise UsageError(str(exc)) from None
    end = events[-1].t if events else 0.0
    if t > end:
        raise UsageError(f"--at {args.at}: the run in {args.dir} ends at {format_duration(end)} "
                         f"({end:g} s); expected a time from 0 to then")
    print_out(render(events, t))
    return 0
