"""The ClamAV adapter: a real ``clamd`` over its INSTREAM protocol.

Uses ``aioclamd`` (``ClamdAsyncClient.instream``), a small maintained
asyncio client that speaks TCP through ``asyncio.open_connection``, so it
runs on whatever loop is running.  clamd parses the MIME message itself
(base64, quoted-printable, nested parts, archives), so the whole message is
streamed as it arrived.

Every failure is an ``error`` verdict, never an exception and never a pass:
clamd not listening, a timeout (clamd hung or overloaded), the connection
dropped mid-scan (clamd died), an ``... ERROR`` answer, an answer we cannot
parse, a message beyond ``StreamMaxLength``.  clamd's heuristic
``Heuristics.Limits.Exceeded.*`` findings (with ``AlertExceedsMax yes``:
a zip bomb, too many files, too deep) are errors too, matching the
built-in scanner's limits, rather than infections: the content was not
inspected, it was not found bad.
"""
from __future__ import annotations

import asyncio
import io

import aioclamd

from mta.filters.virus import VirusVerdict

# Signature-name prefixes that mean "not inspected", not "infected".
LIMIT_PREFIXES = ("Heuristics.Limits.Exceeded",)


class ClamdScanner:
    """``async scan(message) -> VirusVerdict`` against clamd at ``host:port``.

    ``timeout`` bounds one whole scan (connect, send, answer) in seconds of
    loop time; ``max_size`` refuses bigger messages before sending them
    (clamd's ``StreamMaxLength`` would refuse them after).
    """

    name = "clamd"

    def __init__(self, host: str = "127.0.0.1", port: int = 3310, *,
                 timeout: float = 30.0, max_size: int | None = None,
                 limit_prefixes: tuple[str, ...] = LIMIT_PREFIXES) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.max_size = max_size
        self.limit_prefixes = tuple(limit_prefixes)
        self._client = aioclamd.ClamdAsyncClient(host, port, timeout=timeout)

    async def ping(self) -> bool:
        """True when clamd answers PONG (readiness probe); never raises."""
        try:
            return (await self._client.ping()).strip() == "PONG"
        except Exception:
            return False

    async def scan(self, message: bytes) -> VirusVerdict:
        if self.max_size is not None and len(message) > self.max_size:
            return VirusVerdict.error(self.name, f"message of {len(message)} bytes exceeds "
                                                 f"the scanner's {self.max_size}")
        try:
            answer = await self._client.instream(io.BytesIO(message))
        except aioclamd.ConnectionTimeoutError:
            return VirusVerdict.error(self.name, f"clamd timed out after {self.timeout:g} s")
        except aioclamd.BufferTooLongError as exc:
            return VirusVerdict.error(self.name, f"clamd refused the size: {exc}")
        except aioclamd.ClamdConnectionError as exc:
            cause = exc.__cause__
            detail = f"{type(cause).__name__}: {cause}" if cause else str(exc)
            return VirusVerdict.error(self.name, f"clamd unreachable or died: {detail}"[:300])
        except aioclamd.ResponseError as exc:
            return VirusVerdict.error(self.name, f"clamd error: {exc}"[:300])
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # anything else from the client is still an error verdict
            return VirusVerdict.error(self.name, f"{type(exc).__name__}: {exc}"[:300])
        return self.interpret(answer)

    def interpret(self, answer: object) -> VirusVerdict:
        """The verdict for one INSTREAM answer as aioclamd returns it,
        ``{"stream": (status, signature)}``."""
        if not isinstance(answer, dict) or len(answer) != 1:
            return VirusVerdict.error(self.name, f"clamd gave no usable answer: {answer!r}"[:300])
        ((_, value),) = answer.items()
        try:
            status, signature = value
        except (TypeError, ValueError):
            return VirusVerdict.error(self.name, f"clamd answer not understood: {value!r}"[:300])
        if status == "OK":
            return VirusVerdict.clean(self.name)
        if status == "FOUND" and signature:
            if signature.startswith(self.limit_prefixes):
                return VirusVerdict.error(self.name, f"scan limit reached: {signature}")
            return VirusVerdict.infected(self.name, (signature,))
        return VirusVerdict.error(self.name, f"clamd: {status} {signature or ''}".strip()[:300])
