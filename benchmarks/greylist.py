"""Benchmark: the greylisting stage's cost per RCPT, per store.

    .venv/bin/python benchmarks/greylist.py [--rcpts 20000] [--rounds 3]

Runs :class:`mta.policy.greylist.GreylistStage` directly (no SMTP) over a
mixed load: 2,000 clients in 200 /24 networks, new triplets, retries after
the delay and repeat senders, so every branch reads and most write.  The
stores: memory (the simulation's), SQLite WAL with ``synchronous=NORMAL``
(the live default) and ``FULL`` (an fsync per RCPT).  Reports microseconds
per RCPT (median of the rounds) and the stage's decisions per second.
The SQLite calls run on the caller's thread, as in the server today: this
is the time an RCPT holds the event loop.  The machine is shared; run it
more than once.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mta.addresses import Address  # noqa: E402
from mta.policy.decision import Facts  # noqa: E402
from mta.policy.greylist import GreylistStage  # noqa: E402
from mta.policy.greylist_store import MemoryGreylistStore, SqliteGreylistStore  # noqa: E402


def load(n: int, seed: int = 1) -> list[tuple[float, str, str, str]]:
    rng = random.Random(seed)
    t = 1_800_000_000.0
    out = []
    for _ in range(n):
        t += rng.expovariate(1 / 2.0)
        if out and rng.random() < 0.3:               # a retry of an earlier attempt
            _, ip, s, r = rng.choice(out[-500:])
        else:
            ip = f"10.{rng.randrange(200)}.{rng.randrange(10)}.{rng.randrange(1, 255)}"
            s = f"user{rng.randrange(5000)}@sender{rng.randrange(300)}.example"
            r = f"rcpt{rng.randrange(3000)}@example.net"
        out.append((t, ip, s, r))
    return out


def run(store, requests) -> float:
    now = [0.0]
    stage = GreylistStage(store=store, clock=lambda: now[0])
    facts = []
    for t, ip, s, r in requests:
        f = Facts(client_ip=ip)
        local, _, dom = s.partition("@")
        f.mail_from = Address(local, dom)
        rl, _, rd = r.partition("@")
        facts.append((t, f, Address(rl, rd)))
    start = time.perf_counter()
    for t, f, rcpt in facts:
        now[0] = t
        stage.on_rcpt(f, rcpt)
    return (time.perf_counter() - start) / len(facts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rcpts", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    requests = load(args.rcpts)
    with tempfile.TemporaryDirectory() as d:
        makers = {
            "memory": lambda i: MemoryGreylistStore(),
            "sqlite NORMAL": lambda i: SqliteGreylistStore(os.path.join(d, f"n{i}.db")),
            "sqlite FULL": lambda i: SqliteGreylistStore(os.path.join(d, f"f{i}.db"),
                                                         synchronous="FULL"),
        }
        for name, make in makers.items():
            times = []
            for i in range(args.rounds):
                store = make(i)
                times.append(run(store, requests))
                store.close()
            med = statistics.median(times)
            print(f"{name:14s} {med * 1e6:8.1f} us/RCPT  {1 / med:10.0f} RCPT/s  "
                  f"(rounds: {', '.join(f'{x * 1e6:.1f}' for x in times)})")


if __name__ == "__main__":
    main()
