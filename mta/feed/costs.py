"""What the SMTP feed's filter stages cost: service times and scanner processes.

Configuration only (the feed's role validates and carries it,
:mod:`mta.roles.feed`), apart from the chain that spends it
(:mod:`mta.feed.chain`, on asyncio), so that validating a scenario loads
neither the chain nor the queue and the event classes.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StageCost:
    """Service time ``base + per_kb * size/1000`` seconds, ``processes``
    scanner processes, and the ``timeout`` after which a scan is an error."""

    base: float
    per_kb: float
    processes: int
    timeout: float = 60.0

    def __post_init__(self) -> None:
        if self.base < 0 or self.per_kb < 0:
            raise ValueError("service times must not be negative")
        if self.processes < 1:
            raise ValueError("a stage needs at least one scanner process")
        if self.timeout <= 0:
            raise ValueError("a stage timeout must be positive")

    def service_time(self, size: int) -> float:
        return self.base + self.per_kb * size / 1000.0


#: The measured defaults (the table in :mod:`mta.feed.chain`'s docstring).
DEFAULT_COSTS: dict[str, StageCost] = {
    "virus": StageCost(base=0.001, per_kb=0.0001, processes=10),
    "spam": StageCost(base=0.150, per_kb=0.0, processes=2),
}
