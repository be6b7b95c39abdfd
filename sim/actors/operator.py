"""The provider's operator: a scenario's ``operations`` carried out in time.

One actor per feed host with operations.  It waits for each action's ``at``
and calls the feed's :class:`~mta.feed.operations.FeedOperator`, which
records the action as an event (``QueueLifetimeSet``, ``DeliveryModeSet``):
the checks judge the run against what the operator did, from the log alone.
Actions at the same time run in file order.
"""
from __future__ import annotations

import asyncio

from mta.feed.operations import FeedOperator
from sim.scenario.operations import Operation


class OperatorActor:
    """Runs the ``operations`` (already validated) of one feed host."""

    def __init__(self, operator: FeedOperator, operations: list[Operation]) -> None:
        self.operator = operator
        self.operations = sorted(operations, key=lambda op: op.at)   # stable: file order on ties

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for op in self.operations:
            await asyncio.sleep(max(op.at - loop.time(), 0.0))
            await self.act(op)

    async def act(self, op: Operation) -> None:
        """Carry out one action now."""
        a, feed = op.action, self.operator
        if op.name == "extend-queue":
            feed.extend_queue(a.client, a.lifetime)
        elif op.name == "switch-to-pop3":
            await feed.switch_to_mailboxes(a.client, a.users, port=a.port)
        else:
            await feed.switch_to_feed(a.client)
