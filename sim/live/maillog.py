"""The live host's maillog, streamed: the lines of :mod:`mta.maillog` (Postfix's
syslog format, the same projection a simulated run writes beside its log),
appended as each event is emitted, so a SIGKILL leaves whole lines."""
from __future__ import annotations

import os
from pathlib import Path

from mta import events as ev
from mta.maillog import MaillogFormatter


class Maillog:
    """Appends the maillog lines of each event to ``path`` (whole lines, O_APPEND)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._fmt = MaillogFormatter(epoch=0.0)     # live events carry Unix time
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def emit(self, event: ev.Event) -> None:
        lines = self._fmt.lines(event)
        if lines:
            os.write(self._fd, "".join(line + "\n" for line in lines).encode("utf-8", "replace"))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
