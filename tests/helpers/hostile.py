"""Hostile clients against ``mxsim serve`` on loopback: the bed the drivers
of ``tests/test_reliability_limits.py`` (short forms, slow suite) and
``benchmarks/hostile.py`` (the issue's full sizes) share.  No tests here.

:class:`Bed` starts a real ``mxsim serve`` subprocess (a backup MX relaying
``example.net`` to an aiosmtpd sink in this process, or to a refused port
so that mail stays queued), reached over real sockets; the server is
measured from outside (``/proc/PID/status`` VmRSS/VmHWM, ``/proc/PID/fd``)
and the sink knows what it received.  Timeouts and limits are short
through the scenario (``idle_timeout``, ``size_limit``,
``recipient_limit``), never by patching.  The drivers, each a ``run_*``
returning a dict of figures for the callers to assert on or print:
:mod:`helpers.hostile_streams` (the hypothesis command streams),
:mod:`helpers.hostile_limits` (huge DATA, many RCPTs) and
:mod:`helpers.hostile_connections` (idle connections, slow drip).
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


def settle_fds(pid: int, target: int, timeout: float = 30) -> int:
    """Wait until ``pid`` has at most ``target`` descriptors open; the count."""
    deadline = time.monotonic() + timeout
    while (n := open_fds(pid)) > target and time.monotonic() < deadline:
        time.sleep(0.05)
    return n


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
