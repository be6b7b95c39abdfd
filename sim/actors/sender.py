"""The legitimate sender: messages into a real sending MTA's queue.

The actor only decides *when* and *what*: arrival times, sizes, recipients
and senders are drawn from the run's seed (:mod:`sim.actors.generate`), and
each message is handed to the host's sending MTA (an ``mta.queue``
:class:`~mta.queue.QueueManager` with the actor's retry preset), which does
the rest as a real MTA would: MX lookup in preference order with fallback,
retries on its schedule, a DSN when it gives up.
"""
from __future__ import annotations

import asyncio
import random
from typing import Awaitable, Callable

from sim.actors import generate as g
from sim.scenario.traffic import Sender

Submit = Callable[[str, list[str], bytes], Awaitable[str]]


class SenderActor:
    """Runs one ``sender`` entry of a scenario: generates and submits mail."""

    def __init__(self, spec: Sender, hostname: str, rng: random.Random, submit: Submit, *,
                 name: str, stop: float) -> None:
        self.spec = spec
        self.hostname = hostname
        self.rng = rng
        self.submit = submit
        self.name = name
        self.stop = spec.stop if spec.stop is not None else stop
        self.submitted: list[str] = []   # queue IDs, in order

    async def run(self) -> None:
        spec = self.spec
        loop = asyncio.get_running_loop()
        times = g.schedule(self.rng, spec, self.stop)
        for n, t in enumerate(times, 1):
            await asyncio.sleep(max(t - loop.time(), 0.0))
            mail_from, rcpts, size = g.draw_envelope(self.rng, spec)
            kind = g.draw_content(self.rng, spec.content)
            data = g.build_content(kind, self.rng, spec.content, mail_from=mail_from,
                                   rcpts=rcpts, size=size,
                                   msgid=f"{self.name}.{n}@{self.hostname}", t=loop.time(),
                                   subject=f"{self.name} message {n}")
            self.submitted.append(await self.submit(mail_from, rcpts, data))
