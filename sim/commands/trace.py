"""``mxsim trace REPORT_DIR RECIPIENT|MSG``: follow one message across hosts.

Prints a swimlane per message: one column per host its copies passed, one
row per fact (accepted, tried, deferred with the reply, held, released,
relayed, delivered, bounced, DSN), with link changes on those hosts.  MSG
is a queue ID (``host/m3``) or a trace (the Message-ID); a recipient shows
each message sent to it (the first few, then a list).  Exit status 0, or 2
when the log cannot be read or nothing in it matches.
"""
from __future__ import annotations

import argparse
import difflib

from sim.cli import UsageError
from sim.commands.report import log_path, print_out
from sim.evidence.log import LogError, read_jsonl
from sim.evidence.model import Evidence
from sim.report.swimlane import select, swimlane

#: Swimlanes printed for a recipient before the rest are only listed.
SHOWN = 3


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("trace", help="follow one recipient or message across hosts",
                       description=__doc__.split("\n\n")[0].replace("``", ""))
    p.add_argument("dir", metavar="REPORT_DIR", help="run directory holding events.jsonl")
    p.add_argument("who", metavar="RECIPIENT|MSG",
                   help="a recipient address, a queue ID (host/m3) or a Message-ID")
    p.add_argument("--all", action="store_true", help="a swimlane for every matching message")
    return p


def run(args: argparse.Namespace) -> int:
    path = log_path(args.dir)
    try:
        evidence = Evidence(read_jsonl(path))
    except LogError as exc:
        raise UsageError(str(exc)) from None
    found = select(evidence, args.who)
    if not found:
        known = sorted({lf.rcpt for lf in evidence.lifecycles})
        close = difflib.get_close_matches(args.who.lower(), known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UsageError(f"{args.who}: no recipient, queue ID or Message-ID in {path} "
                         f"matches{hint}")
    traces = list(found)
    shown = traces if args.all else traces[:SHOWN]
    parts = [swimlane(evidence, found[t]) for t in shown]
    rest = traces[len(shown):]
    if rest:
        listing = [f"{len(rest)} more message{'s' if len(rest) != 1 else ''} "
                   f"(mxsim trace {args.dir} MESSAGE-ID, or --all):"]
        listing += [f"  {t}: " + ", ".join(f"{lf.host} {lf.fate}" for lf in found[t])
                    for t in rest[:50]]
        if len(rest) > 50:
            listing.append(f"  ... and {len(rest) - 50} more")
        parts.append("\n".join(listing))
    print_out("\n\n".join(parts))
    return 0
