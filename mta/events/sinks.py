"""Where components report facts: the sink protocol, the in-memory sinks
and the recording sink a simulated run writes its log through.

Every component gets an :class:`EventSink` injected and calls
``sink.emit(event)``; what the sink does with it (keep it, write it, drop
it) never changes what the component does.  Every line written goes
through :mod:`mta.events.codec`; the readers of those files are in the
simulation's log module (``sim.evidence.log``).
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Protocol

from mta.events.base import Event
from mta.events.codec import decode, encode


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


class RunLogSink:
    """Keeps every event in memory and appends its canonical line to a file
    as it is emitted: a simulated run's log, written during the run rather
    than by a pass after it, so a run that fails keeps its log so far.

    Lines are gathered in memory and written by :meth:`flush` (the runner
    calls it after every slice of simulated time) and :meth:`close`, in one
    write each (one ``write`` call per event was a tenth of the sink's
    cost), so a process killed mid-run leaves the log up to its last flush
    and at most one partial line, which the log reader refuses.

    Events of the few kinds with a mapping field (the runner's expectations
    and scenario description) are kept as their line decodes, with the key
    order a reader of the file sees; every other event already equals its
    decoded line (float fields are floats, :mod:`mta.events.base`).  So
    judging :attr:`events` and judging the file give the same bytes.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.events: list[Event] = []
        self._mapped: dict[type, bool] = {}
        self._lines: list[str] = []
        self._fh = open(self.path, "w", encoding="ascii", newline="\n")

    def emit(self, event: Event) -> None:
        if self._fh.closed:
            # The run is over: what its torn-down tasks still report is no
            # part of its log (neither in the file nor in the list).
            return
        line = encode(event)
        self._lines.append(line)
        mapped = self._mapped.get(type(event))
        if mapped is None:
            mapped = self._mapped[type(event)] = any(
                str(f.type).startswith("dict") for f in dataclasses.fields(event))
        self.events.append(decode(line) if mapped else event)

    def flush(self) -> None:
        """Write out every line emitted so far."""
        if self._lines:
            self._lines.append("")          # the last line's newline
            self._fh.write("\n".join(self._lines))
            self._lines.clear()
        self._fh.flush()

    def close(self) -> None:
        """Write out the rest and end the log: later events are ignored."""
        if not self._fh.closed:
            self.flush()
            self._fh.close()
