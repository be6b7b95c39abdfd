"""Complete SMTP sessions per second: simulated loop versus real loopback.

Runs the same unmodified components (mta.basic: an aiosmtpd sink and an
aiosmtplib sender) N times sequentially, first on the simulated world, then
on the standard asyncio loop over 127.0.0.1, alternating rounds so that a
noisy machine affects both sides alike, and prints one closing line:

    sim_sessions_per_s=<n> live_sessions_per_s=<n> ratio=<sim/live>

It also shows that simulated idle time is free: the same sessions with the
receiving link down for two simulated days (the sender retrying every 5 min)
cost about the same wall time.

    python benchmarks/sessions.py [--sessions 2000] [--rounds 3]
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mta.basic import send_message, serve_sink  # noqa: E402
from sim.network import LinkSpec  # noqa: E402
from sim.schedules import Outages  # noqa: E402
from sim.world import World  # noqa: E402

BODY = (b"From: a@sender.example\r\nTo: b@mx.example\r\nSubject: bench\r\n\r\n"
        + (b"x" * 76 + b"\r\n") * 12)  # about 1 KiB


async def _sessions(host: str, port: int, n: int, retry: float = 300.0) -> int:
    done = 0
    while done < n:
        try:
            await send_message(host, port, "sender.example", "a@sender.example",
                               ["b@mx.example"], BODY, timeout=60)
            done += 1
        except (OSError, Exception):  # noqa: BLE001 - outage: wait and retry
            await asyncio.sleep(retry)
    return done


def run_sim(n: int, outage: list[tuple[float, float]] | None = None) -> tuple[float, float]:
    """Wall seconds for ``n`` sessions in a fresh world, and simulated end time."""
    world = World(seed=1, scenario="bench")
    sender = world.add_host("sender.example", "192.0.2.1")
    mx = world.add_host("mx.example", "192.0.2.25", LinkSpec(schedule=Outages(outage or [])))
    world.run_until_complete(mx, serve_sink("mx.example", 25))
    gc.collect()
    t0 = time.perf_counter()
    world.run_until_complete(sender, _sessions("192.0.2.25", 25, n))
    wall = time.perf_counter() - t0
    return wall, world.now()


def run_live(n: int) -> float:
    async def main() -> float:
        server, _ = await serve_sink("mx.example", 0, host="127.0.0.1")
        port = server.sockets[0].getsockname()[1]
        t0 = time.perf_counter()
        await _sessions("127.0.0.1", port, n)
        wall = time.perf_counter() - t0
        server.close()
        await server.wait_closed()
        return wall

    gc.collect()
    return asyncio.run(main())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    n = args.sessions
    sim_rates, live_rates = [], []
    for r in range(args.rounds):
        wall, _ = run_sim(n)
        sim_rates.append(n / wall)
        live_rates.append(n / run_live(n))
        print(f"round {r + 1}: sim {sim_rates[-1]:.0f}/s  live {live_rates[-1]:.0f}/s", flush=True)
    wall_out, sim_end = run_sim(n, outage=[(1.0, 2 * 86400.0)])
    wall_base, _ = run_sim(n)
    print(f"two-day outage: {n} sessions ending at simulated t={sim_end / 3600:.1f} h took "
          f"{wall_out:.2f} s wall, against {wall_base:.2f} s with no outage")
    sim, live = statistics.median(sim_rates), statistics.median(live_rates)
    print(f"sim_sessions_per_s={sim:.0f} live_sessions_per_s={live:.0f} ratio={sim / live:.2f}")


if __name__ == "__main__":
    main()
