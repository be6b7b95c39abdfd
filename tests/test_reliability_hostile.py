"""Hostile SMTP clients, driven by a hypothesis state machine (slow).

Each example is one simulated world with a receiving server (the role of
``tests/test_server_hostile.py``) and a few dozen client connections; the
rules open connections, send hostile lines (malformed, over-long, NUL and
8-bit bytes, out of order, pipelined groups, DATA bodies with dot tricks,
bare LF), pause, and drop connections.  A model of each connection knows
when a reply is due (not inside DATA) and when the server may hang up (421,
221).  Invariants: every reply is a well-formed SMTP reply, arrives before
the idle timeout (no hang), the server never logs a ComponentError, and it
still serves a clean transaction at the end of every example.  The run
counts its streams (connections) and asserts at least
:data:`MIN_STREAMS` (10,000); ``benchmarks/reliability.py hostile`` runs
the 100,000 of the issue.
"""
from __future__ import annotations

import asyncio
import os

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant, precondition, rule,
                                 run_state_machine_as_test)

from mta.events import ComponentError
from mta.roles import CustomerMailServer
from helpers.server import FEED_IP, MX_IP, LineClient, world_with

pytestmark = pytest.mark.slow

ROLE = CustomerMailServer(hostname="mail.customer.example", local_domains=("customer.example",),
                          mailboxes=("u1@customer.example", "u2@customer.example"),
                          max_message_size=100_000)
IDLE = ROLE.idle_timeout
MIN_STREAMS = int(os.environ.get("MXSIM_HOSTILE_STREAMS", "10000"))
EXAMPLES = int(os.environ.get("MXSIM_HOSTILE_EXAMPLES", "280"))

COMMANDS = [
    b"EHLO client.example.org", b"HELO client.example.org", b"HELO", b"EHLO", b"EHLO [",
    b"MAIL FROM:<a@b.example>", b"MAIL FROM:<>", b"MAIL FROM:<a@b.example> SIZE=99999999",
    b"MAIL FROM:<a@b.example> BODY=8BITMIME", b"MAIL FROM:<a@b.example", b"MAIL TO:<a@b>",
    b"MAIL FROM:<" + b"a" * 600 + b"@b.example>",
    b"RCPT TO:<u1@customer.example>", b"RCPT TO:<u2@customer.example>",
    b"RCPT TO:<x@elsewhere.example>", b"RCPT TO:<u1%elsewhere.example@customer.example>",
    b"RCPT TO:<@customer.example:x@elsewhere.example>", b"RCPT TO:<>", b"RCPT TO:",
    b"DATA", b"DATA now", b"RSET", b"NOOP", b"NOOP x", b"VRFY u1", b"EXPN staff", b"HELP",
    b"ETRN customer.example", b"AUTH PLAIN AAAA", b"AUTH LOGIN", b"STARTTLS", b"BDAT 10 LAST",
    b"XYZZY plugh", b"", b"\x00", b"NOOP\x00hidden", b"NOOP \xff\xfe", b"NOOP " + b"x" * 3000,
    b"QUIT",
]
BODY = [b"Subject: hostile", b"", b"..", b".x", b"x" * 2000, b"\x00\x01", b"From: <a@b>",
        b"\xff\xfe 8-bit", b". ", b"...."]
line_bytes = st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
command = st.one_of(st.sampled_from(COMMANDS), line_bytes)
ending = st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n"])

STATS = {"streams": 0, "replies": 0, "examples": 0}


class Stream:
    """One client connection and what the model knows of it."""

    def __init__(self, client: LineClient) -> None:
        self.client = client
        self.in_data = False
        self.closed = False      # the server may have hung up (421/221) or we closed


class HostileClients(RuleBasedStateMachine):
    """Hostile connections against one server in one simulated world."""

    @initialize()
    def start(self) -> None:
        self.world, self.mx, _, self.feed, self.server = world_with(ROLE)
        self.streams: list[Stream] = []
        STATS["examples"] += 1

    def run(self, coro, timeout: float = IDLE + 10):
        async def bounded():
            return await asyncio.wait_for(coro, timeout)
        return self.world.run_until_complete(self.feed, bounded())

    def open_streams(self) -> list[Stream]:
        return [s for s in self.streams if not s.closed]

    @precondition(lambda self: len(self.open_streams()) < 4)
    @rule()
    def connect(self) -> None:
        async def go():
            reader, writer = await asyncio.open_connection(MX_IP, 25)
            client = LineClient(reader, writer)
            return client, await client.reply()
        client, (code, _) = self.run(go())
        assert code == 220
        self.streams.append(Stream(client))
        STATS["streams"] += 1

    @precondition(lambda self: self.open_streams())
    @rule(data=st.data(), lines=st.lists(command, min_size=1, max_size=6), end=ending)
    def send(self, data, lines, end) -> None:
        stream = data.draw(st.sampled_from(self.open_streams()))
        self.exchange(stream, lines, end)

    @precondition(lambda self: any(s.in_data for s in self.open_streams()))
    @rule(data=st.data(), lines=st.lists(st.sampled_from(BODY), max_size=8),
          finish=st.booleans())
    def body(self, data, lines, finish) -> None:
        stream = data.draw(st.sampled_from([s for s in self.open_streams() if s.in_data]))
        self.exchange(stream, lines + ([b"."] if finish else []), b"\r\n")

    @precondition(lambda self: self.open_streams())
    @rule(data=st.data(), seconds=st.floats(min_value=0, max_value=IDLE / 2))
    def pause(self, data, seconds) -> None:
        self.run(asyncio.sleep(seconds))

    @precondition(lambda self: self.open_streams())
    @rule(data=st.data())
    def drop(self, data) -> None:
        stream = data.draw(st.sampled_from(self.open_streams()))
        stream.client.close()
        stream.closed = True

    def exchange(self, stream: Stream, lines: list[bytes], end: bytes) -> None:
        """Send ``lines`` in one write; read the replies the model expects."""
        async def go():
            stream.client.send(b"".join(line + end for line in lines))
            got = []
            for line in lines:
                if stream.in_data:
                    if line != b".":
                        continue
                    stream.in_data = False
                try:
                    code, text = await stream.client.reply()
                except ConnectionError:
                    assert got and got[-1] in (421, 221), f"closed after {got} on {line!r}"
                    return got
                assert 200 <= code <= 599, (code, text)
                got.append(code)
                if code == 354:
                    stream.in_data = True
                if code in (221, 421):
                    return got
            return got
        got = self.run(go())
        if got and got[-1] in (221, 421):
            stream.client.close()     # the server hangs up after these
            stream.closed = True
        STATS["replies"] += len(got)

    @invariant()
    def no_component_error(self) -> None:
        if hasattr(self, "world"):
            errors = [e for e in self.world.events if isinstance(e, ComponentError)]
            assert not errors, errors

    def teardown(self) -> None:
        if not hasattr(self, "world"):
            return
        for s in self.open_streams():
            s.client.close()

        async def clean():
            reader, writer = await asyncio.open_connection(MX_IP, 25)
            c = LineClient(reader, writer)
            codes = [(await c.reply())[0]]
            for cmd in (b"EHLO client.example.org", b"MAIL FROM:<a@b.example>",
                        b"RCPT TO:<u1@customer.example>", b"DATA",
                        b"Subject: fine\r\n\r\nok\r\n.", b"QUIT"):
                codes.append((await c.command(cmd))[0])
            c.close()
            return codes
        assert self.run(clean()) == [220, 250, 250, 250, 354, 250, 221]
        self.world.run(until=self.world.now() + IDLE + 1)   # idle streams time out
        assert not [c for c in self.server.connections if c.transport is not None]


def test_hostile_streams_never_crash_or_hang_and_there_are_enough_of_them():
    """The state machine, then its count, in one test (no order between tests,
    which pytest-xdist may split across workers)."""
    run_state_machine_as_test(HostileClients, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=200, deadline=None, derandomize=True,
        suppress_health_check=list(HealthCheck)))
    print(f"hostile: {STATS['examples']} worlds, {STATS['streams']} streams, "
          f"{STATS['replies']} replies")
    assert STATS["streams"] >= MIN_STREAMS, STATS
