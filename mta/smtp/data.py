"""Reading a DATA body to the final dot under a size limit (RFC 1870 §5)."""
from __future__ import annotations

import asyncio
from typing import Any


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
        return bytes(self._kept) if self._kept is not None else None
