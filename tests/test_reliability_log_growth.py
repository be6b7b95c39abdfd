"""The event log grows linearly with the recipients of a transaction.

Regression: every SmtpReply carried all the recipients accepted so far, so
a transaction of n RCPTs logged n*n/2 addresses (10,000 RCPTs through
``mxsim serve``: 987 MB of events.jsonl, and replies slowing down
quadratically).  Now only the reply to the message carries them, which is
what the smtp-transaction check reads.
"""
from __future__ import annotations

import asyncio

from mta.events import SmtpReply
from mta.roles import PrimaryMx
from helpers.server import MX_IP, LineClient, world_with

ROLE = PrimaryMx(hostname="mx1.example.net", local_domains=("example.net",), max_recipients=250)


def test_recipients_are_logged_once_on_the_reply_to_the_message():
    world, _, _, feed, _ = world_with(ROLE)
    n = 300

    async def session():
        c = LineClient(*await asyncio.open_connection(MX_IP, 25))
        await c.reply()
        await c.command(b"EHLO client.example.org")
        await c.command(b"MAIL FROM:<a@b.example>")
        codes = [(await c.command(f"RCPT TO:<r{i}@example.net>".encode()))[0] for i in range(n)]
        await c.command(b"DATA")
        done = await c.command(b"Subject: many\r\n\r\nhi\r\n.")
        await c.command(b"QUIT")
        c.close()
        return codes, done[0]

    codes, done = world.run_until_complete(feed, session())
    assert codes == [250] * 250 + [452] * 50 and done == 250
    replies = [e for e in world.events if isinstance(e, SmtpReply)]
    assert sum(len(e.rcpts) for e in replies) == 250
    (end,) = [e for e in replies if e.command == "DATA_END"]
    assert end.rcpts == tuple(f"r{i}@example.net" for i in range(250))
