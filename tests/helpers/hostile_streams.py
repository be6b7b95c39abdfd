"""Hostile SMTP command streams from a hypothesis state machine, against a
server in the simulated world (:class:`SimTarget`) or ``mxsim serve`` on
loopback (:class:`LiveTarget`).  No tests here: ``tests/test_reliability_hostile.py``,
``tests/test_reliability_limits.py`` and ``benchmarks/hostile.py`` run it.

The rules open connections, send hostile lines (malformed, over-long, NUL
and 8-bit bytes, out of order, pipelined groups, DATA bodies with dot
tricks, bare LF), pause, and drop connections.  A model of each connection
knows when a reply is due: inside DATA none is, until the final
``CRLF.CRLF`` (a ``.`` after a bare LF does not end the data: the
SMTP-smuggling rule), and then the server must have stored exactly
:func:`stored_data` of what was sent.  Invariants: every reply is a
well-formed SMTP reply and arrives before the idle timeout (no hang); the
server logs no ComponentError; a clean transaction works at the end of
every example.  Every message acknowledged with 250 is recorded with its
queue ID and expected bytes, so a live run can check the durable queue.
"""
from __future__ import annotations

import asyncio
import re
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant, precondition, rule,
                                 run_state_machine_as_test)

from helpers.hostile import Bed, settle_fds
from helpers.server import LineClient


def commands(domain: str) -> list[bytes]:
    """Hostile and ordinary command lines for a server taking mail for ``domain``."""
    d = domain.encode()
    return [
        b"EHLO client.example.org", b"HELO client.example.org", b"HELO", b"EHLO", b"EHLO [",
        b"MAIL FROM:<a@b.example>", b"MAIL FROM:<>", b"MAIL FROM:<a@b.example> SIZE=99999999",
        b"MAIL FROM:<a@b.example> BODY=8BITMIME", b"MAIL FROM:<a@b.example", b"MAIL TO:<a@b>",
        b"MAIL FROM:<" + b"a" * 600 + b"@b.example>",
        b"RCPT TO:<u1@" + d + b">", b"RCPT TO:<u2@" + d + b">",
        b"RCPT TO:<x@elsewhere.example>", b"RCPT TO:<u1%elsewhere.example@" + d + b">",
        b"RCPT TO:<@" + d + b":x@elsewhere.example>", b"RCPT TO:<>", b"RCPT TO:",
        b"DATA", b"DATA now", b"RSET", b"NOOP", b"NOOP x", b"VRFY u1", b"EXPN staff", b"HELP",
        b"ETRN " + d, b"AUTH PLAIN AAAA", b"AUTH LOGIN", b"STARTTLS", b"BDAT 10 LAST",
        b"XYZZY plugh", b"", b"\x00", b"NOOP\x00hidden", b"NOOP \xff\xfe", b"NOOP " + b"x" * 3000,
        b"QUIT",
    ]


BODY = [b"Subject: hostile", b"", b"..", b".x", b"x" * 2000, b"\x00\x01", b"From: <a@b>",
        b"\xff\xfe 8-bit", b". ", b"...."]
line_bytes = st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
ending = st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n"])
QUEUED = re.compile(r"queued as (\S+)")
#: Seconds of slack when deciding whether the server may have timed a stream out.
IDLE_MARGIN = 1.0
CLEAN_DATA = b"Subject: fine\r\n\r\nok\r\n"     # what the clean transaction sends


def stored_data(raw: bytes) -> bytes:
    """What a server must keep of a DATA stream ``raw`` that ends with its
    final ``.CRLF`` (RFC 5321 §4.5.2): every CRLF-terminated line with one
    leading dot removed, without the terminating line.  An independent
    statement of :class:`mta.smtp.data.DataReader`'s rule."""
    lines = raw.split(b"\r\n")[:-2]          # the "" after the last CRLF, then "."
    return b"".join((ln[1:] if ln.startswith(b".") else ln) + b"\r\n" for ln in lines)


class Stream:
    """One client connection and what the model knows of it."""

    def __init__(self, client: LineClient, now: float) -> None:
        self.client = client
        self.last = now          # loop time the server last restarted its wait (at most)
        self.expired = False     # it may have timed us out since (we sent into silence)
        self.in_data = False
        self.raw = b""           # DATA bytes sent since the 354
        self.closed = False      # the server may have hung up (421/221) or we closed


@dataclass
class Tally:
    """What one run of the machine did (summed over examples)."""

    examples: int = 0
    streams: int = 0
    replies: int = 0
    withheld: int = 0        # 421 4.4.2 instead of a reply the model waited for (withheld)
    idle_closed: int = 0     # streams timed out while left alone for the idle timeout
    acked: list[tuple[str, bytes]] = field(default_factory=list)   # (queue ID, data)


class Target:
    """Where the streams go: the server, a way to run client coroutines,
    and what to check after each example."""

    idle: float          # the server's idle timeout
    pause_max: float     # longest pause a rule may take
    tally: Tally

    def start(self) -> None: ...
    def run(self, coro: Awaitable, timeout: float) -> Any: ...
    async def open(self) -> LineClient: ...
    def errors(self) -> list: ...
    def finish(self, streams: list[Stream]) -> None: ...

    async def clean(self, rcpt: bytes) -> list[int]:
        """A clean transaction on a new connection: every reply's code."""
        c = await self.open()
        codes = [(await c.reply())[0]]
        for cmd in (b"EHLO client.example.org", b"MAIL FROM:<a@b.example>",
                    b"RCPT TO:<" + rcpt + b">", b"DATA",
                    b"Subject: fine\r\n\r\nok\r\n.", b"QUIT"):
            code, text = await c.command(cmd)
            codes.append(code)
            if cmd.endswith(b".") and code == 250:
                self.tally.acked.append((QUEUED.search(text).group(1), CLEAN_DATA))
        c.close()
        return codes


def machine(target: Target, domain: str) -> type[RuleBasedStateMachine]:
    """The state machine class driving ``target`` (a fresh class per target:
    hypothesis instantiates it once per example)."""
    command = st.one_of(st.sampled_from(commands(domain)), line_bytes)
    rcpt = b"u1@" + domain.encode()

    class HostileClients(RuleBasedStateMachine):
        """Hostile connections against one server."""

        @initialize()
        def start(self) -> None:
            target.start()
            self.streams: list[Stream] = []
            target.tally.examples += 1

        def run(self, coro):
            return target.run(coro, target.idle + 10)

        def open_streams(self) -> list[Stream]:
            return [s for s in self.streams if not s.closed]

        @precondition(lambda self: len(self.open_streams()) < 4)
        @rule()
        def connect(self) -> None:
            async def go():
                client = await target.open()
                return client, await client.reply(), asyncio.get_running_loop().time()
            client, (code, text), now = self.run(go())
            assert code == 220, (code, text)
            self.streams.append(Stream(client, now))
            target.tally.streams += 1

        @precondition(lambda self: self.open_streams())
        @rule(data=st.data(), lines=st.lists(command, min_size=1, max_size=6), end=ending)
        def send(self, data, lines, end) -> None:
            stream = data.draw(st.sampled_from(self.open_streams()))
            self.exchange(stream, lines, end)

        @precondition(lambda self: self.open_streams())
        @rule(data=st.data())
        def envelope(self, data) -> None:
            """A valid envelope up to DATA (out of order when the session
            is not at its start), so that hostile bodies get queued too."""
            stream = data.draw(st.sampled_from(self.open_streams()))
            self.exchange(stream, [b"EHLO client.example.org", b"MAIL FROM:<a@b.example>",
                                   b"RCPT TO:<" + rcpt + b">", b"DATA"], b"\r\n")

        @precondition(lambda self: any(s.in_data for s in self.open_streams()))
        @rule(data=st.data(), lines=st.lists(st.sampled_from(BODY), max_size=8),
              finish=st.booleans())
        def body(self, data, lines, finish) -> None:
            stream = data.draw(st.sampled_from([s for s in self.open_streams() if s.in_data]))
            self.exchange(stream, lines + ([b"."] if finish else []), b"\r\n")

        @precondition(lambda self: self.open_streams())
        @rule(seconds=st.floats(min_value=0, max_value=1))
        def pause(self, seconds) -> None:
            self.run(asyncio.sleep(seconds * target.pause_max))

        @precondition(lambda self: self.open_streams())
        @rule(data=st.data())
        def drop(self, data) -> None:
            stream = data.draw(st.sampled_from(self.open_streams()))
            stream.client.close()
            stream.closed = True

        def exchange(self, stream: Stream, lines: list[bytes], end: bytes) -> None:
            """Send ``lines`` in one write; read the replies the model expects."""
            async def go():
                now = asyncio.get_running_loop().time
                # Left alone for the idle timeout while other streams were
                # busy, the server may have said 421 and closed (and a write
                # after its close may reset the connection before we read it).
                quiet = stream.expired or now() - stream.last >= target.idle - IDLE_MARGIN
                stream.expired = quiet
                stream.client.send(b"".join(line + end for line in lines))
                if stream.in_data and end == b"\r\n":
                    stream.last = now()      # the server restarts its wait per CRLF line
                got = []
                for line in lines:
                    if stream.in_data:
                        at_line_start = not stream.raw or stream.raw.endswith(b"\r\n")
                        stream.raw += line + end
                        if not (line == b"." and end == b"\r\n" and at_line_start):
                            continue
                        stream.in_data = False
                    try:
                        code, text = await stream.client.reply()
                    except ConnectionError:
                        if quiet and not got:
                            target.tally.idle_closed += 1
                            return got, True
                        assert got and got[-1] in (421, 221), f"closed after {got} on {line!r}"
                        return got, True
                    assert 200 <= code <= 599, (code, text)
                    got.append(code)
                    if code == 250 and stream.raw and not stream.in_data:
                        qid = QUEUED.search(text)
                        assert qid, text
                        target.tally.acked.append((qid.group(1), stored_data(stream.raw)))
                    stream.raw = b""
                    if code == 354:
                        stream.in_data = True
                    if code in (221, 421):
                        if text.startswith("4.4.2") and quiet and len(got) == 1:
                            target.tally.idle_closed += 1
                        elif text.startswith("4.4.2"):
                            target.tally.withheld += 1
                        return got, True
                if got:                      # it answered: it is alive, and waiting again
                    stream.last, stream.expired = now(), False
                return got, False
            got, closed = self.run(go())
            if closed:
                stream.client.close()     # the server hangs up after 421 and 221
                stream.closed = True
            target.tally.replies += len(got)

        @invariant()
        def no_component_error(self) -> None:
            errors = target.errors()
            assert not errors, errors

        def teardown(self) -> None:
            streams = getattr(self, "streams", None)
            if streams is None:
                return
            for s in self.open_streams():
                s.client.close()
            codes = self.run(target.clean(rcpt))
            assert codes == [220, 250, 250, 250, 354, 250, 221], f"clean transaction: {codes}"
            target.finish(streams)

    return HostileClients


class SimTarget(Target):
    """A fresh simulated world per example, made by ``make()`` (which
    returns the world, the client host and the server)."""

    def __init__(self, make: Callable[[], tuple[Any, Any, Any]], ip: str, idle: float) -> None:
        self.make, self.ip, self.idle = make, ip, idle
        self.pause_max = idle / 2
        self.tally = Tally()

    def start(self) -> None:
        from mta.events import ComponentError
        self.world, self.client_host, self.server = self.make()
        self._error = ComponentError

    def run(self, coro, timeout):
        async def bounded():
            return await asyncio.wait_for(coro, timeout)
        return self.world.run_until_complete(self.client_host, bounded())

    async def open(self) -> LineClient:
        return LineClient(*await asyncio.open_connection(self.ip, 25))

    def errors(self) -> list:
        world = getattr(self, "world", None)
        return [] if world is None else [e for e in world.events if isinstance(e, self._error)]

    def finish(self, streams: list[Stream]) -> None:
        self.world.run(until=self.world.now() + self.idle + 1)   # idle streams time out
        left = [c.conn for c in self.server.connections if c.transport is not None]
        assert not left, f"still open after the idle timeout: {left}"


class LiveTarget(Target):
    """``mxsim serve`` on loopback (a :class:`helpers.hostile.Bed`), driven
    from one asyncio loop in this thread; pauses are scaled down to
    ``pause_max`` (the idle timeout itself has its own test)."""

    def __init__(self, bed: Any, pause_max: float = 0.02, progress: int = 0) -> None:
        self.bed, self.idle, self.pause_max = bed, bed.idle, pause_max
        self.progress, self._reported = progress, 0   # print a line every `progress` streams
        self.loop = asyncio.new_event_loop()
        self.tally = Tally()
        self._seen = 0       # bytes of the event log already checked for errors

    def start(self) -> None:
        pass

    def run(self, coro, timeout):
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))

    async def open(self) -> LineClient:
        return LineClient(*await asyncio.open_connection("127.0.0.1", self.bed.port))

    def errors(self) -> list:
        return [] if self.bed.alive() else [f"mxsim serve exited {self.bed.served.proc.poll()}"]

    def finish(self, streams: list[Stream]) -> None:
        # The log is read once per example (reading it per step would cost
        # more than the steps); a crash shows at once through errors().
        new, self._seen = self.bed.new_events(self._seen)
        errors = [e for e in new if e["kind"] == "ComponentError"]
        assert not errors, errors
        if self.progress and self.tally.streams // self.progress > self._reported:
            self._reported = self.tally.streams // self.progress
            print(f"{self.tally.streams} streams, {len(self.tally.acked)} acknowledged",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        self.loop.close()


# -- the live run and its queue check ------------------------------------------------

#: What the server puts before the data it stores: a Message-ID when the
#: data has none (RFC 5322 §3.6.4, as Postfix adds one), the Received block.
TRACE = re.compile(rb"(Message-ID: <[^>\r\n]+>\r\n)?Received: [^\r\n]*\r\n(\t[^\r\n]*\r\n)*")


def queue_contents(state: Path) -> tuple[str, dict[str, bytes]]:
    """SQLite's integrity verdict on ``state/queue.sqlite`` and the bodies
    it holds (read after the server stopped)."""
    db = sqlite3.connect(state / "queue.sqlite")
    try:
        verdict = db.execute("PRAGMA integrity_check").fetchone()[0]
        bodies = {m: bytes(b) for m, b in db.execute("SELECT msg, data FROM bodies")}
    finally:
        db.close()
    return verdict, bodies


def run_streams(work: Path, *, examples: int, idle: float = 30.0, pause_max: float = 0.02,
                progress: int = 0) -> dict:
    """The hostile-stream machine (:mod:`helpers.hostile_streams`) for
    ``examples`` examples against one ``mxsim serve`` whose mail stays
    queued (its route is refused), then a clean transaction, then SIGTERM.

    Figures: streams, replies, messages acknowledged, replies withheld
    (421 4.4.2 where the model waited for a reply), streams timed out
    while left alone (the machine was slow), the server's descriptors
    before and after, its exit
    status, and the queue check: SQLite's integrity verdict, acknowledged
    messages missing from the queue or stored with other bytes than were
    sent (the stored body is the Received block, then exactly the data),
    and messages in the queue nobody acknowledged (half-written)."""
    t0 = time.monotonic()
    with Bed(work, idle=idle, hold=True) as bed:
        baseline = settle_fds(bed.pid, 0, timeout=0.5)
        target = LiveTarget(bed, pause_max, progress)
        try:
            # No shrinking: a replay meets a server whose state has moved on
            # (hypothesis then reports a flaky strategy and hides the failure).
            run_state_machine_as_test(machine(target, "example.net"), settings=settings(
                max_examples=examples, stateful_step_count=200, deadline=None,
                derandomize=True, database=None, suppress_health_check=list(HealthCheck),
                phases=(Phase.explicit, Phase.reuse, Phase.generate)))
            final = target.run(target.clean(b"final@example.net"), idle + 10)
        finally:
            target.close()
        after = settle_fds(bed.pid, baseline, timeout=idle + 10)
        alive = bed.alive()
    seconds = time.monotonic() - t0
    verdict, bodies = queue_contents(work / "state")
    tally = target.tally
    acked = dict(tally.acked)
    wrong = [q for q, data in acked.items()
             if q in bodies and not (bodies[q].endswith(data) and TRACE.fullmatch(
                 bodies[q][:len(bodies[q]) - len(data)]))]
    return {"examples": tally.examples, "streams": tally.streams, "replies": tally.replies,
            "acknowledged": len(acked), "withheld": tally.withheld,
            "idle_closed": tally.idle_closed, "final": final,
            "seconds": round(seconds, 1), "streams_per_s": round(tally.streams / seconds),
            "fds_baseline": baseline, "fds_after": after, "alive_before_stop": alive,
            "exit": bed.rc, "integrity": verdict,
            "missing": sorted(set(acked) - set(bodies))[:5],
            "wrong_bytes": wrong[:5],
            "unacknowledged": sorted(set(bodies) - set(acked))[:5]}
