"""Where components report facts: the sink protocol and the in-memory sinks.

Every component gets an :class:`EventSink` injected and calls
``sink.emit(event)``; what the sink does with it (keep it, write it, drop
it) never changes what the component does.  The files a run writes come
from the sinks of the simulation's log module, which encode with
:mod:`mta.events.codec`.
"""
from __future__ import annotations

from typing import Protocol

from mta.events.base import Event


class EventSink(Protocol):
    """Where components report facts.  ``emit`` must not block or fail."""

    def emit(self, event: Event) -> None: ...


class MemorySink:
    """Keeps events in a list, in emission order."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def of_kind(self, *classes: type[Event]) -> list[Event]:
        """The events that are instances of any of ``classes``, in order."""
        return [e for e in self.events if isinstance(e, classes)]


class NullSink:
    """Discards events (benchmarks of bare protocol cost)."""

    def emit(self, event: Event) -> None:
        pass
