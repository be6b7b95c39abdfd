"""The live event log: ``events.jsonl`` appended line by line, crash-safe.

A live host can be killed at any instant (SIGKILL is the crash the tests
use).  The log must still be readable afterwards: the readers of
:mod:`sim.evidence.log` refuse a file whose last line lacks its newline.
So every event is written as one whole line with one ``write(2)`` on an
``O_APPEND`` descriptor (no user-space buffer that a kill would tear), and
a log found torn anyway (a power cut) is cut back to its last complete
line when it is opened again.  The log is evidence, not the queue: what
was acknowledged is durable in SQLite before the 250, whatever happens to
the log's tail.
"""
from __future__ import annotations

import os
from pathlib import Path

from mta.events import Event, codec


def repair(path: Path, chunk: int = 65536) -> int:
    """Cut ``path`` back to its last complete line; returns the bytes cut."""
    size = path.stat().st_size
    with open(path, "rb+") as f:
        end = size
        while end > 0:
            start = max(0, end - chunk)
            f.seek(start)
            block = f.read(end - start)
            if end == size and block.endswith(b"\n"):
                return 0
            cut = block.rfind(b"\n")
            if cut >= 0:
                keep = start + cut + 1
                break
            end = start
        else:
            keep = 0
        f.truncate(keep)
        return size - keep


class LiveLog:
    """An :class:`mta.events.sinks.EventSink` appending canonical lines.

    ``fresh`` tells whether the log held no event when opened (the prologue
    of a run is written once, not again on every restart).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.repaired = repair(self.path) if self.path.exists() else 0
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.fresh = os.fstat(self._fd).st_size == 0
        self.written = 0

    def emit(self, event: Event) -> None:
        os.write(self._fd, (codec.encode(event) + "\n").encode("ascii"))
        self.written += 1

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class Fanout:
    """Several sinks as one: each event goes to every sink, in order."""

    def __init__(self, *sinks) -> None:
        self.sinks = sinks

    def emit(self, event: Event) -> None:
        for sink in self.sinks:
            sink.emit(event)
