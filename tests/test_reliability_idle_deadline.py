"""The idle timeout runs from the last command line, whatever it was.

RFC 5321 §4.5.3.2.7: a server waits at least its timeout "while it is
awaiting the next command".  A line the server answered with an error
(unknown verb, bad syntax, too long) is a command it answered: the wait
for the next one starts there.  Regression: the timer was restarted only
for known verbs (aiosmtpd's rule), so a client that sent ``XYZZY`` and
then a NOOP within the timeout of it was cut off with 421 measured from
the command before.  Junk cannot hold a connection for ever this way:
Postfix's hard error limit (20) closes it (``tests/test_server_hostile.py``).
"""
from __future__ import annotations

import asyncio

import pytest

from mta.roles import PrimaryMx
from helpers.server import MX_IP, LineClient, world_with

IDLE = 60.0
ROLE = PrimaryMx(hostname="mx1.example.net", local_domains=("example.net",), idle_timeout=IDLE)


@pytest.mark.parametrize("junk", [b"XYZZY plugh", b"NOOP\x00hidden", b"NOOP " + b"x" * 3000,
                                  b"MAIL FROM:<a@b.example>"])   # the last: 503 before EHLO
def test_an_answered_bad_line_restarts_the_wait(junk):
    world, _, _, feed, _ = world_with(ROLE)

    async def session():
        c = LineClient(*await asyncio.open_connection(MX_IP, 25))
        await c.reply()
        await asyncio.sleep(IDLE * 0.75)
        bad = (await c.command(junk))[0]
        await asyncio.sleep(IDLE * 0.75)          # 1.5 x IDLE after the greeting
        ok = await c.command(b"NOOP")
        c.close()
        return bad, ok[0]

    bad, ok = world.run_until_complete(feed, session())
    assert bad >= 500 and ok == 250


def test_the_deadline_still_holds_after_a_bad_line():
    world, _, _, feed, _ = world_with(ROLE)

    async def session():
        c = LineClient(*await asyncio.open_connection(MX_IP, 25))
        await c.reply()
        await c.command(b"XYZZY")
        t = asyncio.get_running_loop().time()
        line = await c.reader.readline()
        waited = asyncio.get_running_loop().time() - t
        c.close()
        return line, waited

    line, waited = world.run_until_complete(feed, session())
    assert line.startswith(b"421 4.4.2 ") and waited == pytest.approx(IDLE, abs=0.05)
