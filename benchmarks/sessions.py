"""Complete SMTP sessions per second: the library floor against the full roles.

Two sides run in the same simulated world shape (two hosts on always-up
5 ms links), each ``N`` sessions one after another, in alternating rounds
(the side that goes first alternates too) so that a noisy machine affects
both alike:

* **floor**: aiosmtpd's own ``aiosmtpd.handlers.Sink`` behind a plain
  ``aiosmtpd.smtp.SMTP``, and a plain ``aiosmtplib.SMTP`` client
  (``connect``, ``sendmail``, ``quit``): no mxsim code but the simulated
  loop and network;
* **full**: a primary MX wired as the scenarios wire it (:func:`sim.wiring.wire`
  on a scenario: the role's policy chain, its queue, delivery into its
  mailboxes, every event logged), receiving from mxsim's own delivery client
  (:class:`mta.delivery.client.Deliverer`, routing by the MX record, without
  connection reuse so that every message is one whole session).

Each figure is the median over the rounds, of wall time (the closing line)
and of process CPU time (steadier on a shared machine).  It prints::

    floor_sessions_per_s=<n> full_sessions_per_s=<n> full_over_floor=<x>

where ``full_over_floor`` is the cost of a full session over a floor one
(floor rate / full rate; the goal is at most 1.3).  ``--live`` adds the
floor on real loopback sockets with the standard asyncio loop, side by side;
``--profile`` profiles one more run of each side and prints the top of each
profile (cumulative and own time) and how the time splits by package.
A two-day outage line shows that simulated idle time is free.

    python benchmarks/sessions.py [--sessions 2000] [--rounds 5] [--live] [--profile]
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiosmtplib  # noqa: E402
from aiosmtpd.handlers import Sink  # noqa: E402
from aiosmtpd.smtp import SMTP  # noqa: E402

from mta.delivery.client import RELAYED, Deliverer, DeliveryConfig  # noqa: E402
from sim.scenario.loader import load_text  # noqa: E402
from sim.wiring import wire  # noqa: E402
from sim.world.core import World  # noqa: E402
from sim.world.network import LinkSpec  # noqa: E402
from sim.world.schedules import Outages  # noqa: E402

BODY = (b"From: a@sender.example\r\nTo: b@mx.example\r\nSubject: bench\r\n\r\n"
        + (b"x" * 76 + b"\r\n") * 12)  # about 1 KiB
SENDER, SENDER_IP, MX, MX_IP = "sender.example", "192.0.2.1", "mx.example", "192.0.2.25"

# The full side's world: a primary MX for mx.example, its DNS, and a host
# that sends; no traffic actors (the benchmark drives the delivery client).
SCENARIO = f"""
name: bench-sessions
seed: 1
duration: 30d
hosts:
  - {{name: {SENDER}, address: {SENDER_IP}}}
  - {{name: {MX}, address: {MX_IP}}}
dns:
  zones: |
    $ORIGIN mx.example.
    @   MX 10 mx.example.
    @   A  {MX_IP}
    $ORIGIN sender.example.
    @   A  {SENDER_IP}
roles:
  - {{role: primary-mx, host: {MX}, local_domains: {MX}}}
"""


# -- the floor: aiosmtpd Sink and a plain aiosmtplib client -----------------

async def _floor_sessions(host: str, port: int, n: int, retry: float = 300.0) -> int:
    done = 0
    while done < n:
        client = aiosmtplib.SMTP(hostname=host, port=port, local_hostname=SENDER,
                                 timeout=60, start_tls=False, use_tls=False)
        try:
            await client.connect()
            await client.sendmail("a@sender.example", ["b@mx.example"], BODY)
            await client.quit()
            done += 1
        except (aiosmtplib.SMTPException, OSError):   # an outage: wait and retry
            client.close()
            await asyncio.sleep(retry)
    return done


async def _serve_floor(port: int, host: str | None = None) -> asyncio.AbstractServer:
    # hostname given: aiosmtpd would call socket.getfqdn() (DESIGN.md pitfall 1).
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: SMTP(Sink(), hostname=MX), host=host, port=port)


def _floor_world(outage: list[tuple[float, float]] | None = None) -> tuple[World, Callable]:
    world = World(seed=1, scenario="bench-floor")
    sender = world.add_host(SENDER, SENDER_IP)
    mx = world.add_host(MX, MX_IP, LinkSpec(schedule=Outages(outage or [])))
    world.run_until_complete(mx, _serve_floor(25))
    return world, lambda n: world.run_until_complete(sender, _floor_sessions(MX_IP, 25, n))


# -- the full roles: a wired primary MX and mxsim's delivery client ---------

async def _full_sessions(deliverer: Deliverer, n: int) -> int:
    done = 0
    while done < n:
        outcome = (await deliverer.deliver(mail_from="a@sender.example", rcpts=["b@mx.example"],
                                           data=BODY, domain=MX, on_attempt=_ignore))[0]
        if outcome.status != RELAYED:
            raise RuntimeError(f"session {done + 1} not relayed: {outcome}")
        done += 1
    return done


def _ignore(_dest: object, _rcpts: list[str]) -> None:
    pass


def _full_world() -> tuple[World, Callable]:
    world = World(seed=1, scenario="bench-full")
    built = wire(world, load_text(SCENARIO))
    sender = world.host(SENDER)
    deliverer = Deliverer(sender.ctx, DeliveryConfig(reuse=False))

    def run(n: int) -> int:
        done = world.run_until_complete(sender, _full_sessions(deliverer, n))
        world.run(world.now() + 60)     # the last QUITs and local deliveries
        boxes = built.queues[MX].mailboxes.boxes
        filed = sum(len(v) for v in boxes.values())
        if filed != done:
            raise RuntimeError(f"{done} sessions relayed but {filed} messages in the mailboxes")
        return done
    return world, run


def timed(build: Callable[[], tuple[World, Callable]], n: int) -> tuple[float, float, float]:
    """Wall and CPU seconds of ``n`` sessions in a freshly built world, and
    the simulated end time."""
    world, run = build()
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    run(n)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return wall, cpu, world.now()


def live_timed(n: int) -> tuple[float, float, float]:
    """The floor over real loopback with the standard asyncio loop."""
    async def main() -> tuple[float, float]:
        server = await _serve_floor(0, host="127.0.0.1")
        port = server.sockets[0].getsockname()[1]
        c0, t0 = time.process_time(), time.perf_counter()
        await _floor_sessions("127.0.0.1", port, n)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        server.close()
        await server.wait_closed()
        return wall, cpu

    gc.collect()
    return (*asyncio.run(main()), 0.0)


SIDES: dict[str, Callable[[int], tuple[float, float, float]]] = {
    "floor": lambda n: timed(_floor_world, n),
    "full": lambda n: timed(_full_world, n),
    "live": live_timed,
}

# Where profiled time goes, by file path; the first match wins.
_GROUPS = (("mta/", f"{ROOT}/mta/"), ("sim/", f"{ROOT}/sim/"), ("SimPy", "/simpy/"),
           ("aiosmtpd", "aiosmtpd"), ("aiosmtplib", "aiosmtplib"), ("asyncio", "/asyncio/"),
           ("email", "/email/"))


def profile(side: str, n: int, top: int) -> None:
    """Profile ``n`` sessions of one side; print the top functions by
    cumulative and by own time, and the split of own time by package."""
    world, run = (_floor_world if side == "floor" else _full_world)()
    # CPU time, not wall time: other processes on the machine would
    # otherwise land on whichever function was running when preempted.
    prof = cProfile.Profile(time.process_time)
    prof.enable()
    run(n)
    prof.disable()
    stats = pstats.Stats(prof)
    groups: dict[str, float] = {}
    for (path, _line, _fn), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        name = next((g for g, pattern in _GROUPS if pattern in path), "other")
        groups[name] = groups.get(name, 0.0) + tottime
    total = sum(groups.values()) or 1.0
    parts = "  ".join(f"{k} {100 * v / total:.1f}%" for k, v in sorted(groups.items(), key=lambda kv: -kv[1]))
    print(f"\n== profile of {n} {side} sessions: {total / n * 1e6:.0f} us/session profiled; "
          f"own time by package: {parts}")
    for key in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(prof, stream=out).strip_dirs().sort_stats(key).print_stats(top)
        lines = out.getvalue().splitlines()
        start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
        print(f"-- by {key}:")
        print("\n".join(lines[start:start + top + 1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=2000, help="sessions per run (default 2000)")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    ap.add_argument("--live", action="store_true", help="also the floor on real loopback")
    ap.add_argument("--profile", action="store_true", help="profile one run of each side")
    ap.add_argument("--top", type=int, default=25, help="profile lines to print (default 25)")
    args = ap.parse_args()
    if args.sessions < 1 or args.rounds < 1 or args.top < 1:
        ap.error("--sessions, --rounds and --top must be at least 1")
    n = args.sessions
    sides = ["floor", "full"] + (["live"] if args.live else [])
    for side in sides:                  # warm up: imports, regex caches, first calls
        SIDES[side](min(n, 100))
    wall: dict[str, list[float]] = {s: [] for s in sides}
    cpu: dict[str, list[float]] = {s: [] for s in sides}
    for r in range(args.rounds):
        order = sides[r % len(sides):] + sides[:r % len(sides)]
        for side in order:
            w, c, _ = SIDES[side](n)
            wall[side].append(n / w)
            cpu[side].append(n / c)
        print(f"round {r + 1}: " + "  ".join(
            f"{s} {wall[s][-1]:.0f}/s (cpu {cpu[s][-1]:.0f}/s)" for s in sides), flush=True)
    w_out, _, end = timed(lambda: _floor_world(outage=[(1.0, 2 * 86400.0)]), n)
    w_base, _, _ = timed(_floor_world, n)
    print(f"two-day outage (floor): {n} sessions ending at simulated t={end / 3600:.1f} h took "
          f"{w_out:.2f} s wall, against {w_base:.2f} s with no outage")
    if args.profile:
        for side in ("floor", "full"):
            profile(side, min(n, 1500), args.top)
    med = {s: statistics.median(wall[s]) for s in sides}
    medc = {s: statistics.median(cpu[s]) for s in sides}
    print("median per CPU second: " + "  ".join(f"{s} {medc[s]:.0f}/s" for s in sides)
          + f"  full_over_floor {medc['floor'] / medc['full']:.2f}")
    if args.live:
        print(f"live_floor_sessions_per_s={med['live']:.0f} sim_floor_over_live="
              f"{med['floor'] / med['live']:.2f}")
    print(f"floor_sessions_per_s={med['floor']:.0f} full_sessions_per_s={med['full']:.0f} "
          f"full_over_floor={med['floor'] / med['full']:.2f}")


if __name__ == "__main__":
    main()
