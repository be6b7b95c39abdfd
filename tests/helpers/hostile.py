"""Hostile clients against ``mxsim serve`` on loopback: the shared driver of
``tests/test_reliability_limits.py`` (short forms, slow suite) and
``benchmarks/hostile.py`` (the issue's full sizes).  No tests here.

Every figure comes from a real ``mxsim serve`` subprocess (a backup MX
relaying ``example.net`` to an aiosmtpd sink in this process) reached over
real sockets: :class:`Bed` starts both, measures the server from outside
(``/proc/PID/status`` VmRSS/VmHWM, ``/proc/PID/fd``) and knows what the sink
received.  Timeouts are short through the scenario (``idle_timeout``,
``size_limit``, ``recipient_limit``), never by patching.  Each ``run_*``
function returns a dict of figures; the callers assert on them.
"""
from __future__ import annotations

import collections
import hashlib
import json
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from helpers.serve import Served, start_serve

HOST = "mx2.example.net"
SENDER = "hostile@client.example"
REPLY = re.compile(rb"^[2-5]\d\d[ -]")


def scenario(folder: Path, sink_port: int, *, idle: float, size_limit: int | None = None,
             recipient_limit: int | None = None) -> Path:
    """A backup MX relaying example.net to the sink, with these limits."""
    extra = ""
    if size_limit is not None:
        extra += f"    size_limit: {size_limit}\n"
    if recipient_limit is not None:
        extra += f"    recipient_limit: {{limit: {recipient_limit}, behaviour: conformant}}\n"
    path = folder / "hostile.yaml"
    path.write_text(f"""\
name: hostile-clients
description: a backup MX facing hostile clients on loopback
seed: 1
duration: 1h
hosts:
  - {{name: {HOST}, address: 192.0.2.11}}
roles:
  - role: secondary-mx
    host: {HOST}
    relay_domains: example.net
    routes: {{example.net: "[127.0.0.1]:{sink_port}"}}
    idle_timeout: {idle}
{extra}""")
    return path


class SinkHandler:
    """aiosmtpd handler: deliveries per (Message-ID, recipient) and the
    SHA-256 of each message's body (what follows the header block)."""

    def __init__(self) -> None:
        self.deliveries: collections.Counter[tuple[str, str]] = collections.Counter()
        self.digests: dict[str, set[str]] = collections.defaultdict(set)
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        content = envelope.content
        head, _, body = content.partition(b"\r\n\r\n")
        mid = ""
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                mid = line.split(b":", 1)[1].strip().decode()
        digest = hashlib.sha256(body).hexdigest()
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.deliveries[(mid, rcpt.lower())] += 1
            self.digests[mid].add(digest)
        return "250 2.0.0 Ok"

    def delivered(self, mid: str) -> dict[str, int]:
        with self.lock:
            return {r: n for (m, r), n in self.deliveries.items() if m == mid}

    def wait_for(self, mid: str, rcpts: int, timeout: float = 120) -> dict[str, int]:
        """The deliveries of ``mid`` once ``rcpts`` recipients have it (or at timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.delivered(mid)
            if len(got) >= rcpts:
                time.sleep(0.2)     # a duplicate would arrive right behind
                return self.delivered(mid)
            time.sleep(0.05)
        return self.delivered(mid)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid`` in bytes (from ``/proc/PID/status``)."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    return out


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Dialogue:
    """A blocking SMTP client for exact bytes over one loopback socket."""

    def __init__(self, port: int, timeout: float = 60) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.file = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> tuple[int, str]:
        """One (possibly multiline) reply; ConnectionError on EOF."""
        lines = []
        while True:
            line = self.file.readline()
            if not line.endswith(b"\r\n"):
                raise ConnectionError(f"closed; partial {line!r} after {lines}")
            if not REPLY.match(line):
                raise AssertionError(f"not an SMTP reply: {line!r}")
            lines.append(line[:-2].decode("ascii", "replace"))
            if line[3:4] == b" ":
                return int(lines[-1][:3]), "\n".join(x[4:] for x in lines)

    def command(self, line: bytes) -> tuple[int, str]:
        self.send(line + b"\r\n")
        return self.reply()

    def at_eof(self) -> bool:
        return self.file.read() == b""

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def transaction(port: int, mid: str, rcpts: list[str], body: bytes = b"fine\r\n") -> list[int]:
    """One clean transaction in its own session: the codes of every reply."""
    d = Dialogue(port)
    try:
        codes = [d.reply()[0], d.command(b"EHLO client.example")[0],
                 d.command(f"MAIL FROM:<{SENDER}>".encode())[0]]
        codes += [d.command(f"RCPT TO:<{r}>".encode())[0] for r in rcpts]
        codes.append(d.command(b"DATA")[0])
        d.send(f"Message-ID: {mid}\r\nSubject: clean\r\n\r\n".encode() + body + b".\r\n")
        codes += [d.reply()[0], d.command(b"QUIT")[0]]
        return codes
    finally:
        d.close()


CLEAN = [220, 250, 250, 250, 354, 250, 221]


@dataclass
class Bed:
    """A sink, and ``mxsim serve`` running the hostile scenario."""

    work: Path
    idle: float = 300.0
    size_limit: int | None = None
    recipient_limit: int | None = None
    hold: bool = False       # route example.net to a closed port: mail stays queued
    served: Served | None = None
    handler: SinkHandler = field(default_factory=SinkHandler)
    _controller: object = None

    def __enter__(self) -> "Bed":
        from aiosmtpd.controller import Controller
        sink_port = free_port()
        # No size limit at the sink: it must take what the server accepts.
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=sink_port,
                                      server_hostname="sink.hostile.test", ready_timeout=10,
                                      data_size_limit=None)
        self._controller.start()
        # A port nobody listens on (bound and released): delivery is refused.
        route_port = free_port() if self.hold else sink_port
        path = scenario(self.work, route_port, idle=self.idle, size_limit=self.size_limit,
                        recipient_limit=self.recipient_limit)
        self.served = start_serve(path, HOST, self.work / "state")
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self.served is not None:
                self.rc = self.served.stop()
        finally:
            self._controller.stop()

    @property
    def port(self) -> int:
        return self.served.port(25)

    @property
    def pid(self) -> int:
        return self.served.proc.pid

    def alive(self) -> bool:
        return self.served.proc.poll() is None

    def events(self) -> list[dict]:
        lines = (self.work / "state" / "events.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines]

    def new_events(self, offset: int) -> tuple[list[dict], int]:
        """The events logged after byte ``offset`` (whole lines), and the new offset."""
        with open(self.work / "state" / "events.jsonl", "rb") as f:
            f.seek(offset)
            data = f.read()
        data = data[:data.rfind(b"\n") + 1]
        return [json.loads(line) for line in data.splitlines()], offset + len(data)

    def component_errors(self) -> list[dict]:
        return [e for e in self.events() if e["kind"] == "ComponentError"]

    def clean(self, mid: str) -> list[int]:
        return transaction(self.port, mid, ["clean@example.net"])


# -- 2. a huge DATA stream ------------------------------------------------------

def _chunk(size: int = 1 << 20) -> bytes:
    """``size`` bytes of body: ordinary lines, dot-stuffed lines and one line
    of 64 KiB without a line break (the reader's long-line path)."""
    line = b"x" * 1022 + b"\r\n"
    stuffed = b".." + b"y" * 1020 + b"\r\n"
    long = b"z" * ((64 << 10) - 2) + b"\r\n"
    body = long + (line * 3 + stuffed) * ((size - len(long)) // 4096)
    return body + b"w" * (size - len(body) - 2) + b"\r\n"


class RssSampler(threading.Thread):
    """Samples the server's VmRSS every few milliseconds while it runs."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self._done = pid, 0, threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.005):
            self.peak = max(self.peak, proc_status(self.pid)["VmRSS"])

    def stop(self) -> int:
        self._done.set()
        self.join()
        return self.peak


def run_big_data(work: Path, *, total: int, limit: int | None, under: int) -> dict:
    """Send ``total`` bytes of DATA over a ``limit`` size limit, then a
    message of ``under`` body bytes (just under it) in the same session.

    Figures: the reply to the oversized message and to the next one, the
    server's RSS growth (VmHWM after minus VmHWM before, and the peak of
    sampled VmRSS over the baseline), whether the under-limit message
    reached the sink byte for byte."""
    with Bed(work, size_limit=limit) as bed:
        assert bed.clean("<warm@hostile.test>") == CLEAN
        before = proc_status(bed.pid)
        d = Dialogue(bed.port, timeout=600)
        d.reply()
        d.command(b"EHLO client.example")
        mail = d.command(f"MAIL FROM:<{SENDER}>".encode())[0]
        d.command(b"RCPT TO:<big@example.net>")
        start = d.command(b"DATA")[0]
        sampler = RssSampler(bed.pid)
        sampler.start()
        chunk, sent, t0 = _chunk(), 0, time.monotonic()
        d.send(b"Message-ID: <huge@hostile.test>\r\n\r\n")
        while sent < total:
            d.send(chunk)
            sent += len(chunk)
        d.send(b".\r\n")
        over = d.reply()
        seconds = time.monotonic() - t0
        peak = sampler.stop()
        after = proc_status(bed.pid)
        # The session goes on: a message just under the limit, stored intact.
        mid = "<under@hostile.test>"
        head = f"Message-ID: {mid}\r\n\r\n".encode()
        stuffed = b".." + b"u" * 996 + b"\r\n"          # 999 octets once unstuffed
        lines = (under - len(head) - 999) // 1000
        body = stuffed + (b"v" * 998 + b"\r\n") * lines
        unstuffed = body[1:]
        codes = [d.command(b"RSET")[0], d.command(f"MAIL FROM:<{SENDER}>".encode())[0],
                 d.command(b"RCPT TO:<under@example.net>")[0], d.command(b"DATA")[0]]
        d.send(head + body + b".\r\n")
        codes += [d.reply()[0], d.command(b"QUIT")[0]]
        d.close()
        under_hwm = proc_status(bed.pid)["VmHWM"]
        got = bed.handler.wait_for(mid, 1)
        with bed.handler.lock:
            digests = set(bed.handler.digests.get(mid, ()))
        huge_delivered = bed.handler.delivered("<huge@hostile.test>")
        alive = bed.alive()
        errors = bed.component_errors()
    return {"sent": sent, "mail": mail, "data": start, "over_reply": over,
            "seconds": round(seconds, 1), "mb_per_s": round(sent / seconds / 1e6, 1),
            "hwm_growth": after["VmHWM"] - before["VmHWM"],
            "rss_peak_growth": max(0, peak - before["VmRSS"]),
            "baseline_rss": before["VmRSS"], "after": codes,
            "under_size": len(head) + len(unstuffed), "under_delivered": got,
            "under_hwm_growth": under_hwm - after["VmHWM"],
            "under_intact": digests == {hashlib.sha256(unstuffed).hexdigest()},
            "huge_delivered": huge_delivered, "alive": alive, "errors": errors}


# -- 3. thousands of recipients in one transaction --------------------------------

def run_many_rcpts(work: Path, *, n: int, limit: int) -> dict:
    """One session pipelines EHLO, MAIL, ``n`` RCPTs (distinct recipients)
    and DATA, reading replies on another thread as they come (a client that
    wrote everything before reading would deadlock against any server that
    waits for its replies to drain).

    Figures: how many RCPTs were answered, 250 and 452 4.5.3 counts, the
    index of the first 452, the DATA reply, the event-log bytes per RCPT,
    the time of the reply to each tenth of the RCPTs (the benchmark prints
    them: a quadratic server would slow down towards the end), and how
    many accepted recipients the sink got exactly once."""
    with Bed(work, recipient_limit=limit) as bed:
        log = work / "state" / "events.jsonl"
        log_before = log.stat().st_size
        d = Dialogue(bed.port, timeout=300)
        d.reply()
        d.command(b"EHLO client.example")
        mid = "<many@hostile.test>"
        rcpts = [f"r{i}@example.net" for i in range(n)]
        replies: list[tuple[int, str]] = []
        times: list[float] = []

        def read() -> None:
            for _ in range(n + 2):      # MAIL, the RCPTs, DATA
                replies.append(d.reply())
                times.append(time.monotonic())

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        t0 = time.monotonic()
        d.send(f"MAIL FROM:<{SENDER}>\r\n".encode()
               + b"".join(f"RCPT TO:<{r}>\r\n".encode() for r in rcpts) + b"DATA\r\n")
        reader.join(300)
        rcpt_replies = replies[1:n + 1]
        codes = [c for c, _ in rcpt_replies]
        data = d.command(f"Message-ID: {mid}\r\nSubject: many\r\n\r\nhello\r\n.".encode())
        quit_ = d.command(b"QUIT")[0]
        d.close()
        log_bytes = log.stat().st_size - log_before
        accepted = [r for r, c in zip(rcpts, codes) if c == 250]
        got = bed.handler.wait_for(mid, len(accepted))
        errors, alive = bed.component_errors(), bed.alive()
    tenths = [round(times[1 + (n * k) // 10 - 1] - t0, 3) for k in range(1, 11)] \
        if len(times) == n + 2 else []
    return {"rcpts": n, "answered": len(rcpt_replies), "accepted": codes.count(250),
            "too_many": sum(1 for c, t in rcpt_replies if c == 452 and t.startswith("4.5.3")),
            "first_452": codes.index(452) if 452 in codes else None,
            "data": replies[-1][0] if len(replies) == n + 2 else None, "queued": data[0],
            "quit": quit_, "log_bytes_per_rcpt": round(log_bytes / n),
            "tenths_s": tenths,
            "delivered_once": sum(1 for r in accepted if got.get(r) == 1),
            "delivered_twice_or_more": sum(1 for r in accepted if got.get(r, 0) > 1),
            "stray": sorted(set(got) - set(accepted))[:5], "alive": alive, "errors": errors}


# -- 4. many idle connections -------------------------------------------------------

def raise_nofile(needed: int) -> None:
    """Raise this process's soft RLIMIT_NOFILE (``mxsim serve`` inherits it)."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise RuntimeError(f"RLIMIT_NOFILE hard limit {hard} < {needed}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def _settle_fds(pid: int, target: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while (n := open_fds(pid)) > target and time.monotonic() < deadline:
        time.sleep(0.05)
    return n


def run_idle_connections(work: Path, *, n: int, idle: float) -> dict:
    """Open ``n`` connections, read each banner, then say nothing.

    Figures: how many got ``421 4.4.2`` and then EOF, how many got anything
    earlier than ``idle`` seconds after they connected (the timer cannot
    start before the connect call), how long past ``idle`` the last 421
    came, whether a fresh client got its banner and completed a transaction
    while they were held, and the server's open descriptors before, while
    held and after."""
    import selectors
    raise_nofile(2 * n + 200)
    with Bed(work, idle=idle) as bed:
        assert bed.clean("<warm@hostile.test>") == CLEAN
        baseline = _settle_fds(bed.pid, 0, timeout=0.5)
        conns: list[tuple[socket.socket, float]] = []
        early_bytes: list[bytes] = []
        banners = 0
        for _ in range(n):
            # One at a time, banner first: a burst would overflow the listen
            # backlog and wait out SYN retransmissions.
            t = time.monotonic()
            s = socket.create_connection(("127.0.0.1", bed.port), timeout=60)
            buf = b""
            while b"\r\n" not in buf and (chunk := s.recv(512)):
                buf += chunk
            banner, _, rest = buf.partition(b"\r\n")
            banners += banner.startswith(b"220 ")
            conns.append((s, t))
            early_bytes.append(rest)
        held_fds = open_fds(bed.pid)
        fresh = bed.clean("<fresh@hostile.test>")   # while all n are held
        fresh_at = time.monotonic()
        sel = selectors.DefaultSelector()
        for i, (s, _) in enumerate(conns):
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, i)
        got = list(early_bytes)
        eof_at: list[float | None] = [None] * n
        now = time.monotonic()
        first_byte_at: list[float | None] = [now if b else None for b in got]
        give_up = time.monotonic() + idle * 3 + 30
        while sel.get_map() and time.monotonic() < give_up:
            for key, _ in sel.select(timeout=1):
                i, s = key.data, key.fileobj
                try:
                    data = s.recv(4096)
                except (ConnectionResetError, BlockingIOError):
                    data = b""
                now = time.monotonic()
                if data and first_byte_at[i] is None:
                    first_byte_at[i] = now
                got[i] += data
                if not data:
                    eof_at[i] = now
                    sel.unregister(s)
        hung = len(sel.get_map())
        for s, _ in conns:
            s.close()
        after = _settle_fds(bed.pid, baseline)
        delivered = bed.handler.wait_for("<fresh@hostile.test>", 1)
        alive, errors = bed.alive(), bed.component_errors()
    early = sum(1 for (_, t), at in zip(conns, first_byte_at)
                if at is not None and at - t < idle)
    ends = [at for at in first_byte_at if at is not None]
    return {"connections": n, "banners": banners,
            "timed_out_421": sum(1 for g in got if g.startswith(b"421 4.4.2 ")),
            "closed_after": sum(1 for e in eof_at if e is not None), "hung": hung,
            "early": early, "other_bytes": [g for g in got if g and not g.startswith(b"421 4.4.2 ")][:3],
            "fresh": fresh, "fresh_before_first_421": bool(ends) and fresh_at < min(ends),
            "fresh_delivered": delivered,
            "last_421_after_idle_s": round(max(ends) - (max(t for _, t in conns) + idle), 2)
            if ends else None,
            "fds_baseline": baseline, "fds_held": held_fds, "fds_after": after,
            "alive": alive, "errors": errors}


# -- 5. slow-drip clients -----------------------------------------------------------

def _drip(d: Dialogue, data: bytes, interval: float) -> tuple[int, float | None]:
    """Send ``data`` one byte every ``interval`` seconds until the server
    speaks or hangs up; (bytes sent, monotonic time it spoke or None)."""
    d.sock.settimeout(interval)
    for i, byte in enumerate(data):
        try:
            if d.sock.recv(1, socket.MSG_PEEK):
                return i, time.monotonic()
            return i, time.monotonic()          # EOF
        except (socket.timeout, BlockingIOError):
            pass
        try:
            d.send(bytes([byte]))
        except OSError:
            return i, time.monotonic()
    d.sock.settimeout(60)
    return len(data), None


def run_slow_drip(work: Path, *, idle: float, interval: float, lines: int,
                  clean: int) -> dict:
    """Three slow clients at once, and a stream of clean ones beside them.

    * ``command``: after EHLO, a MAIL command dripped one byte per
      ``interval`` (well inside ``idle``), taking far longer than ``idle``;
    * ``line``: inside DATA, one body line dripped the same way;
    * ``body``: a DATA body of ``lines`` whole lines, one per ``interval``:
      ``lines * interval`` is several idle timeouts, each line within one.

    Figures: what each slow client got and after how long (from its last
    complete command or line), whether the trickled body was delivered
    intact and the half-dripped ones never, and how many of ``clean``
    sequential transactions completed while the slow clients were still
    connected."""
    results: dict[str, object] = {}
    with Bed(work, idle=idle) as bed:
        def command() -> None:
            d = Dialogue(bed.port)
            d.reply()
            d.command(b"EHLO drip.example")
            t = time.monotonic()
            sent, at = _drip(d, f"MAIL FROM:<{SENDER}>\r\n".encode(), interval)
            results["command"] = (sent, round(at - t, 2) if at else None, _rest(d))

        def line() -> None:
            d = Dialogue(bed.port)
            for c in (None, b"EHLO drip.example", f"MAIL FROM:<{SENDER}>".encode(),
                      b"RCPT TO:<line@example.net>", b"DATA"):
                d.reply() if c is None else d.command(c)
            d.send(b"Message-ID: <line@hostile.test>\r\n\r\n")
            t = time.monotonic()
            sent, at = _drip(d, b"a body line dripped byte by byte\r\n.\r\n", interval)
            results["line"] = (sent, round(at - t, 2) if at else None, _rest(d))

        def body() -> None:
            d = Dialogue(bed.port)
            for c in (None, b"EHLO drip.example", f"MAIL FROM:<{SENDER}>".encode(),
                      b"RCPT TO:<body@example.net>", b"DATA"):
                d.reply() if c is None else d.command(c)
            d.send(b"Message-ID: <body@hostile.test>\r\n\r\n")
            t = time.monotonic()
            for i in range(lines):
                d.send(f"line {i}\r\n".encode())
                time.sleep(interval)
            d.send(b".\r\n")
            results["body"] = (d.reply(), round(time.monotonic() - t, 2), d.command(b"QUIT")[0])
            d.close()

        slow = [threading.Thread(target=f, daemon=True) for f in (command, line, body)]
        for t in slow:
            t.start()
        time.sleep(interval)          # the slow ones are connected
        clean_codes, waits = [], []
        for i in range(clean):
            if not any(t.is_alive() for t in slow):
                break
            t0 = time.monotonic()
            clean_codes.append(bed.clean(f"<clean{i}@hostile.test>") == CLEAN)
            waits.append(time.monotonic() - t0)
        still_slow = [t.is_alive() for t in slow]
        for t in slow:
            t.join(lines * interval + idle * 4 + 30)
        body_text = b"".join(f"line {i}\r\n".encode() for i in range(lines))
        got = bed.handler.wait_for("<body@hostile.test>", 1)
        with bed.handler.lock:
            digests = set(bed.handler.digests.get("<body@hostile.test>", ()))
        results.update(
            body_delivered=got, body_intact=digests == {hashlib.sha256(body_text).hexdigest()},
            line_delivered=bed.handler.delivered("<line@hostile.test>"),
            clean_ok=sum(clean_codes), clean_tried=len(clean_codes),
            clean_max_s=round(max(waits), 3) if waits else None,
            slow_alive_after_clean=still_slow, alive=bed.alive(),
            errors=bed.component_errors())
    return results


def _rest(d: Dialogue) -> bytes:
    """Everything the server sends until it closes."""
    d.sock.settimeout(30)
    data = b""
    try:
        while chunk := d.sock.recv(4096):
            data += chunk
    except OSError:
        pass
    d.close()
    return data


# -- 1. hostile command streams ---------------------------------------------------

#: What the server puts before the data it stores: a Message-ID when the
#: data has none (RFC 5322 §3.6.4, as Postfix adds one), the Received block.
TRACE = re.compile(rb"(Message-ID: <[^>\r\n]+>\r\n)?Received: [^\r\n]*\r\n(\t[^\r\n]*\r\n)*")


def queue_contents(state: Path) -> tuple[str, dict[str, bytes]]:
    """SQLite's integrity verdict on ``state/queue.sqlite`` and the bodies
    it holds (read after the server stopped)."""
    import sqlite3
    db = sqlite3.connect(state / "queue.sqlite")
    try:
        verdict = db.execute("PRAGMA integrity_check").fetchone()[0]
        bodies = {m: bytes(b) for m, b in db.execute("SELECT msg, data FROM bodies")}
    finally:
        db.close()
    return verdict, bodies


def run_streams(work: Path, *, examples: int, idle: float = 5.0, pause_max: float = 0.02) -> dict:
    """The hostile-stream machine (:mod:`helpers.hostile_streams`) for
    ``examples`` examples against one ``mxsim serve`` whose mail stays
    queued (its route is refused), then a clean transaction, then SIGTERM.

    Figures: streams, replies, messages acknowledged, 421 timeouts the
    model waited for, the server's descriptors before and after, its exit
    status, and the queue check: SQLite's integrity verdict, acknowledged
    messages missing from the queue or stored with other bytes than were
    sent (the stored body is the Received block, then exactly the data),
    and messages in the queue nobody acknowledged (half-written)."""
    from hypothesis import HealthCheck, settings
    from hypothesis.stateful import run_state_machine_as_test
    from helpers.hostile_streams import LiveTarget, machine

    t0 = time.monotonic()
    with Bed(work, idle=idle, hold=True) as bed:
        baseline = _settle_fds(bed.pid, 0, timeout=0.5)
        target = LiveTarget(bed, pause_max)
        try:
            run_state_machine_as_test(machine(target, "example.net"), settings=settings(
                max_examples=examples, stateful_step_count=200, deadline=None,
                derandomize=True, database=None, suppress_health_check=list(HealthCheck)))
            final = target.run(target.clean(b"final@example.net"), idle + 10)
        finally:
            target.close()
        after = _settle_fds(bed.pid, baseline, timeout=idle + 10)
        alive = bed.alive()
    seconds = time.monotonic() - t0
    verdict, bodies = queue_contents(work / "state")
    tally = target.tally
    acked = dict(tally.acked)
    wrong = [q for q, data in acked.items()
             if q in bodies and not (bodies[q].endswith(data) and TRACE.fullmatch(
                 bodies[q][:len(bodies[q]) - len(data)]))]
    return {"examples": tally.examples, "streams": tally.streams, "replies": tally.replies,
            "acknowledged": len(acked), "timeouts_421": tally.timeouts, "final": final,
            "seconds": round(seconds, 1), "streams_per_s": round(tally.streams / seconds),
            "fds_baseline": baseline, "fds_after": after, "alive_before_stop": alive,
            "exit": bed.rc, "integrity": verdict,
            "missing": sorted(set(acked) - set(bodies))[:5],
            "wrong_bytes": wrong[:5],
            "unacknowledged": sorted(set(bodies) - set(acked))[:5]}
