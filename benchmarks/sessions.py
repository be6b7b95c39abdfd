"""Complete SMTP sessions per second: simulated loop versus real loopback.

Runs the same unmodified components (mta.smtp.basic: an aiosmtpd sink and an
aiosmtplib sender) N times sequentially, on the simulated world and on the
standard asyncio loop over 127.0.0.1, in alternating rounds (the side that
goes first alternates too) so that a noisy machine affects both sides alike.
Each figure is the median over the rounds, of wall time (the closing line)
and of the process's CPU time (a secondary line, steadier when other
processes share the machine).  It prints one closing line:

    sim_sessions_per_s=<n> live_sessions_per_s=<n> ratio=<sim/live>

It also shows that simulated idle time is free: the same sessions with the
receiving link down for two simulated days (the sender retrying every 5 min)
cost about the same wall time.  Unless ``--no-profile`` is given, it
profiles one more simulated run and reports how its time splits between
the simulation itself (``sim/`` and SimPy) and the components and libraries
it runs; these fractions hardly move with machine noise.

    python benchmarks/sessions.py [--sessions 2000] [--rounds 5] [--no-profile]
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mta.smtp.basic import send_message, serve_sink  # noqa: E402
from sim.world.network import LinkSpec  # noqa: E402
from sim.world.schedules import Outages  # noqa: E402
from sim.world.core import World  # noqa: E402

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


def _sim_world(outage: list[tuple[float, float]] | None = None) -> tuple[World, object]:
    world = World(seed=1, scenario="bench")
    sender = world.add_host("sender.example", "192.0.2.1")
    mx = world.add_host("mx.example", "192.0.2.25", LinkSpec(schedule=Outages(outage or [])))
    world.run_until_complete(mx, serve_sink("mx.example", 25))
    return world, sender


def run_sim_timed(n: int, outage: list[tuple[float, float]] | None = None) -> tuple[float, float, float]:
    """Wall and CPU seconds for ``n`` sessions in a fresh world, and the
    simulated end time."""
    world, sender = _sim_world(outage)
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    world.run_until_complete(sender, _sessions("192.0.2.25", 25, n))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return wall, cpu, world.now()


def run_sim(n: int, outage: list[tuple[float, float]] | None = None) -> tuple[float, float]:
    """Wall seconds for ``n`` sessions in a fresh world, and simulated end time."""
    wall, _, end = run_sim_timed(n, outage)
    return wall, end


def run_live_timed(n: int) -> tuple[float, float]:
    """Wall and CPU seconds for ``n`` sessions over real loopback."""
    async def main() -> tuple[float, float]:
        server, _ = await serve_sink("mx.example", 0, host="127.0.0.1")
        port = server.sockets[0].getsockname()[1]
        c0, t0 = time.process_time(), time.perf_counter()
        await _sessions("127.0.0.1", port, n)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        server.close()
        await server.wait_closed()
        return wall, cpu

    gc.collect()
    return asyncio.run(main())


def run_live(n: int) -> float:
    return run_live_timed(n)[0]


# Where profiled time goes, by file path; the first match wins.
_GROUPS = (("sim/", f"{ROOT}/sim/"), ("SimPy", "/simpy/"), ("aiosmtpd", "aiosmtpd"),
           ("aiosmtplib", "aiosmtplib"), ("asyncio", "/asyncio/"), ("email", "/email/"))


def profile_split(n: int) -> dict[str, float]:
    """Fractions of the profiled time (own time per function) of ``n``
    simulated sessions, by group; builtins count as "other"."""
    world, sender = _sim_world()
    prof = cProfile.Profile()
    prof.enable()
    world.run_until_complete(sender, _sessions("192.0.2.25", 25, n))
    prof.disable()
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    groups: dict[str, float] = {}
    for (path, _line, _fn), (_cc, _nc, tottime, _ct, _callers) in stats.items():
        name = next((g for g, pattern in _GROUPS if pattern in path), "other")
        groups[name] = groups.get(name, 0.0) + tottime
    total = sum(groups.values()) or 1.0
    return {k: v / total for k, v in sorted(groups.items(), key=lambda kv: -kv[1])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-profile", action="store_true", help="skip the profile split")
    args = ap.parse_args()
    n = args.sessions
    # Warm up both sides (imports, regex caches, first-call costs).
    run_sim(min(n, 100))
    run_live(min(n, 100))
    sim_wall, sim_cpu, live_wall, live_cpu = [], [], [], []
    for r in range(args.rounds):
        for side in (("sim", "live") if r % 2 == 0 else ("live", "sim")):
            if side == "sim":
                wall, cpu, _ = run_sim_timed(n)
                sim_wall.append(n / wall)
                sim_cpu.append(n / cpu)
            else:
                wall, cpu = run_live_timed(n)
                live_wall.append(n / wall)
                live_cpu.append(n / cpu)
        print(f"round {r + 1}: sim {sim_wall[-1]:.0f}/s  live {live_wall[-1]:.0f}/s  "
              f"(per CPU second: sim {sim_cpu[-1]:.0f}/s  live {live_cpu[-1]:.0f}/s)", flush=True)
    wall_out, _, sim_end = run_sim_timed(n, outage=[(1.0, 2 * 86400.0)])
    wall_base, _, _ = run_sim_timed(n)
    print(f"two-day outage: {n} sessions ending at simulated t={sim_end / 3600:.1f} h took "
          f"{wall_out:.2f} s wall, against {wall_base:.2f} s with no outage")
    if not args.no_profile:
        split = profile_split(min(n, 1500))
        overhead = split.get("sim/", 0.0) + split.get("SimPy", 0.0)
        parts = "  ".join(f"{k} {100 * v:.1f}%" for k, v in split.items())
        print(f"profile of {min(n, 1500)} simulated sessions: {parts}")
        print(f"simulation overhead (sim/ + SimPy): {100 * overhead:.1f}% of profiled time")
    cpu_sim, cpu_live = statistics.median(sim_cpu), statistics.median(live_cpu)
    print(f"median per CPU second: sim {cpu_sim:.0f}/s  live {cpu_live:.0f}/s  "
          f"ratio {cpu_sim / cpu_live:.2f}")
    sim, live = statistics.median(sim_wall), statistics.median(live_wall)
    print(f"sim_sessions_per_s={sim:.0f} live_sessions_per_s={live:.0f} ratio={sim / live:.2f}")


if __name__ == "__main__":
    main()
