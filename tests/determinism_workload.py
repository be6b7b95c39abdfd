"""A workload for the determinism test, run in a subprocess.

Several senders with seeded Poisson arrivals deliver through links with a
jittered dial-up schedule and random on/off outages; every attempt is an
event.  Prints the canonical JSON lines of the whole event log.
"""
from __future__ import annotations

import asyncio
import sys

import aiosmtplib

from mta.delivery.client import connect_outcome
from mta.smtp.basic import send_message, serve_sink
from mta.events import ConnectAttempt, Relayed, codec
from sim.world.network import LinkSpec
from sim.world.schedules import DialupWindows, RandomOnOff
from sim.world.core import World


def main(seed: int) -> None:
    world = World(seed=seed, scenario="determinism")
    mx = world.add_host("mx.example", "192.0.2.25",
                        LinkSpec(schedule=DialupWindows(up=900, every=3600, jitter=600), down_connect="refuse"))
    senders = [world.add_host(f"s{i}.example", f"198.51.100.{i + 1}",
                              LinkSpec(latency=0.02 * (i + 1), schedule=RandomOnOff(7200, 600)))
               for i in range(4)]
    world.run_until_complete(mx, serve_sink("mx.example", 25))

    async def sender(host):
        rng, loop = host.ctx.rng, asyncio.get_running_loop()
        for n in range(15):
            await asyncio.sleep(rng.expovariate(1 / 900))
            while True:
                try:
                    await send_message("mx.example", 25, host.name, f"a@{host.name}", ["b@mx.example"],
                                       b"Subject: %d\r\n\r\nhello\r\n" % n, timeout=30)
                    world.sink.emit(Relayed(t=loop.time(), host=host.name, msg=f"{host.name}/m{n}",
                                            trace=f"{host.name}.{n}", rcpt="b@mx.example",
                                            dest_host="mx.example", dest_ip="192.0.2.25"))
                    break
                except (OSError, aiosmtplib.SMTPException) as exc:
                    timed_out = isinstance(exc, (asyncio.TimeoutError, aiosmtplib.SMTPTimeoutError))
                    world.sink.emit(ConnectAttempt(t=loop.time(), host=host.name, dest_host="mx.example",
                                                   dest_ip="192.0.2.25", port=25,
                                                   outcome="timeout" if timed_out else connect_outcome(exc)))
                    await asyncio.sleep(300 + rng.random() * 60)

    for h in senders:
        world.spawn(h, sender(h))
    world.run(until=3 * 86400)
    world.finish()
    for e in world.events:
        sys.stdout.write(codec.encode(e) + "\n")


if __name__ == "__main__":
    main(int(sys.argv[1]))
