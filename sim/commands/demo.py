"""``mxsim demo``: the built-in run (mail to an MX down for two days)."""
from __future__ import annotations

import argparse
import time


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("demo", help="built-in run: mail to an MX whose link is down for two days",
                       description="A sending MTA on Postfix's retry schedule delivers to an MX "
                                   "whose link goes down for two simulated days.")
    p.add_argument("--seed", type=int, default=1, help="run seed (default 1)")
    p.add_argument("--messages", type=int, default=12, help="messages to send (default 12)")
    p.add_argument("--events", metavar="FILE", help="also write the event log as JSON lines")
    return p


def run(args: argparse.Namespace) -> int:
    from mta.events import codec
    from sim.commands.paths import output_file, prepare_file
    from sim.demo import OUTAGE, hours, run_demo

    events_file = output_file(args.events, "--events") if args.events else None
    t0 = time.perf_counter()
    result = run_demo(seed=args.seed, messages=args.messages)
    wall = time.perf_counter() - t0
    print(f"mxsim demo (seed {args.seed})")
    print(f"  MX link down from {hours(OUTAGE[0])} to {hours(OUTAGE[1])} of simulated time")
    print(f"  messages submitted   {result.messages}")
    print(f"  delivery attempts    {result.attempts}")
    print(f"  deferrals            {result.deferrals}")
    print(f"  delivered to mailbox {result.delivered} (last at {hours(result.last_delivery)})")
    print(f"  bounced              {result.bounced}")
    print(f"  simulated {hours(result.world.now())} in {wall:.2f} s of wall time "
          f"({len(result.world.events)} events)")
    if events_file is not None:
        with open(prepare_file(events_file), "w", encoding="utf-8") as fh:
            for e in result.world.events:
                fh.write(codec.encode(e) + "\n")
        print(f"  event log: {args.events}")
    return 0 if result.delivered == result.messages and result.bounced == 0 else 1
