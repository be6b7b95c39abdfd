"""The SpamAssassin adapter: a real ``spamd`` through ``aiospamc``.

Sends the SPAMC ``REPORT`` command, which answers the score in its
``Spam:`` header and the rules that hit, each with its points, in the
report body's ``pts rule name`` table.  aiospamc connects with
``asyncio.open_connection``, so it runs on whatever loop is running.

We build aiospamc's ``Client`` over a ``TcpConnectionManager`` once per
scorer instead of calling its one-shot ``aiospamc.report``: that front end
builds two default SSL contexts (loading the system CA store) on every
call, even for plain TCP, about 40 ms of our CPU per message (measured by
``benchmarks/filters.py``).

Every failure is ``SpamScore.failed(reason)``: spamd not listening, a
timeout, a dropped connection, an error status (``EX_*`` codes), an answer
that does not parse.
"""
from __future__ import annotations

import asyncio
import re

import aiospamc
import aiospamc.exceptions
from aiospamc.client import Client
from aiospamc.connections import TcpConnectionManager
from aiospamc.requests import Request

from mta.filters.spam import RuleHit, SpamScore

# One line of the report's rule table: " 2.8 DRUG_ED_CAPS  BODY: Mentions ..."
_RULE_LINE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]+)\b", re.MULTILINE)


def parse_report(body: bytes) -> tuple[RuleHit, ...]:
    """The rule table of a SpamAssassin report, in the report's order."""
    text = body.decode("utf-8", "replace")
    start = text.find("---- ")
    if start < 0:
        return ()
    return tuple(RuleHit(name, float(points))
                 for points, name in _RULE_LINE.findall(text[start:]))


class SpamdScorer:
    """``async score(message) -> SpamScore`` against spamd at ``host:port``.

    ``timeout`` bounds one whole request in seconds of loop time; ``user`` is
    passed as spamd's ``User:`` header when set.
    """

    name = "spamd"

    def __init__(self, host: str = "127.0.0.1", port: int = 783, *,
                 timeout: float = 30.0, user: str | None = None) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.user = user
        limit = aiospamc.Timeout(total=timeout, connection=timeout, response=timeout)
        self._client = Client(TcpConnectionManager(host, port, ssl_context=None, timeout=limit))

    async def ping(self) -> bool:
        """True when spamd answers PONG; never raises."""
        try:
            await self._client.request(Request("PING"))
            return True
        except Exception:
            return False

    async def score(self, message: bytes) -> SpamScore:
        request = Request("REPORT", body=bytes(message))
        if self.user:
            request.headers.user = self.user
        try:
            response = await self._client.request(request)
        except asyncio.CancelledError:
            raise
        except (asyncio.TimeoutError, aiospamc.exceptions.TimeoutException):
            return SpamScore.failed(self.name, f"spamd timed out after {self.timeout:g} s")
        except aiospamc.exceptions.AIOSpamcConnectionFailed as exc:
            cause = exc.__cause__
            return SpamScore.failed(self.name, f"spamd unreachable: {cause or exc}"[:300])
        except Exception as exc:  # error statuses, bad responses, dropped connections
            return SpamScore.failed(self.name, f"spamd error: {type(exc).__name__}: {exc}"[:300])
        try:
            spam = response.headers["Spam"]
            total = float(spam.score)
        except Exception as exc:
            return SpamScore.failed(self.name, f"spamd answer without a score: {exc}"[:300])
        return SpamScore(score=total, rules=parse_report(response.body), scorer=self.name)
