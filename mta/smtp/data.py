"""Reading a DATA body to the final dot under a size limit (RFC 1870 §5)."""
from __future__ import annotations

import asyncio
import inspect
from typing import Any

# DataReader takes the complete lines already in the StreamReader's buffer
# without a readuntil() call per line (a coroutine per line was most of the
# cost of receiving a message: the 100-domain ISP world reads 800,000 body
# lines).  That reaches three private details of asyncio's StreamReader
# (Python 3.11-3.13): fail loudly at import if one moves (tests/test_pins.py
# names them too).
_PRIVATE_READER = ("_buffer", "_limit", "_maybe_resume_transport")
if not all(f"self.{name}" in inspect.getsource(asyncio.StreamReader.readuntil)
           for name in _PRIVATE_READER):  # pragma: no cover
    raise ImportError("asyncio.StreamReader.readuntil no longer uses "
                      f"{_PRIVATE_READER}: mta.smtp.data reads its buffer")

_DOT = 0x2E   # "."


class DataReader:
    """Reads a DATA body to the final dot, keeping at most ``limit`` octets.

    Once the (dot-unstuffed, RFC 1870 §5) size passes the limit, the bytes
    kept so far are dropped and nothing more is kept, but reading goes on to
    the final ``CRLF.CRLF`` (RFC 1870 forbids using SIZE to find the end).
    Only ``.`` on a line that follows a CRLF ends the data (bare LF does not:
    the SMTP-smuggling rule aiosmtpd 1.4.5 adopted).  ``peak`` is the most
    bytes held at once, so tests can show the excess was never buffered.
    """

    def __init__(self, reader: asyncio.StreamReader, limit: int | None,
                 on_progress: Any = None) -> None:
        self.reader = reader
        self.limit = limit
        self.on_progress = on_progress
        self.size = 0
        self.peak = 0
        self.overflow = False
        self._kept: bytearray | None = bytearray()

    def _add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self._kept is None:
            return
        if self.limit and self.size > self.limit:
            self.overflow = True
            self._kept = None          # free what we had: it will not be used
            return
        self._kept += chunk
        self.peak = max(self.peak, len(self._kept))

    async def read(self) -> bytes | None:
        """The message (None when over the limit).  Raises
        ConnectionResetError if the peer goes away before the dot."""
        line_start = True
        while True:
            try:
                chunk = await self.reader.readuntil(b"\r\n")
                complete = True
            except asyncio.LimitOverrunError as exc:
                # A long line: take what the reader holds, keep reading.
                chunk = await self.reader.read(exc.consumed)
                complete = False
            except asyncio.IncompleteReadError:
                raise ConnectionResetError("connection closed during DATA") from None
            if self.on_progress is not None:
                self.on_progress()     # RFC 5321 §4.5.3.2: per-block timeout
            if line_start and complete and chunk == b".\r\n":
                break
            if line_start and chunk.startswith(b"."):
                chunk = chunk[1:]      # dot-unstuffing (RFC 5321 §4.5.2)
            self._add(chunk)
            line_start = complete
            if complete and self._take_buffered():
                break
        return bytes(self._kept) if self._kept is not None else None

    def _take_buffered(self) -> bool:
        """Consume the complete lines already buffered, exactly as the
        ``readuntil`` calls that would return them at once (same instant,
        so the idle timer needs no new deadline): up to an incomplete line,
        one longer than the reader's limit (``readuntil`` raises for it),
        or the final dot.  Returns whether the final dot was consumed.
        Called at the start of a line."""
        reader = self.reader
        if reader.exception() is not None:
            return False               # readuntil raises it before any line
        buf: bytearray = reader._buffer      # type: ignore[attr-defined]
        line_limit: int = reader._limit      # type: ignore[attr-defined]
        limit, kept, size, peak = self.limit, self._kept, self.size, self.peak
        # Runs of lines that start with no dot are taken whole: a body is
        # mostly such lines.  A run is looked for within the reader's limit
        # from its start (so it holds no line readuntil would refuse, and
        # each search is bounded: a large buffer is read in linear time).
        last = buf.rfind(b"\r\n")
        stop = last + 2 if last >= 0 else 0    # the end of the last complete line
        pos, done = 0, False
        while pos < stop:
            if buf[pos] != _DOT:
                window = min(stop, pos + line_limit)
                dot = buf.find(b"\r\n.", pos, window)
                if dot < 0:
                    dot = buf.rfind(b"\r\n", pos, window)     # the run's last line
                run_end = dot + 2 if dot >= 0 else pos         # none: a long line
                grown = size + run_end - pos
                if run_end > pos and (kept is None or not limit or grown <= limit):
                    if kept is not None:
                        kept += buf[pos:run_end]
                        if len(kept) > peak:
                            peak = len(kept)
                    pos, size = run_end, grown
                    continue
            # One line at a time: a dot line, a run that might hold an
            # over-long line, or one that crosses the size limit.
            sep = buf.find(b"\r\n", pos)
            if sep - pos > line_limit:         # (stop bounds the search: sep >= 0)
                break
            end = sep + 2
            start = pos
            if buf[pos] == _DOT:
                if end - pos == 3:     # ".\r\n": the end of the data
                    pos, done = end, True
                    break
                start = pos + 1        # dot-unstuffing (RFC 5321 §4.5.2)
            pos = end
            size += end - start
            if kept is None:
                continue
            if limit and size > limit:
                self.overflow = True
                kept = None            # free what we had: it will not be used
                continue
            kept += buf[start:end]
            if len(kept) > peak:
                peak = len(kept)
        self._kept, self.size, self.peak = kept, size, peak
        if pos:
            del buf[:pos]
            reader._maybe_resume_transport()  # type: ignore[attr-defined]
        return done
