"""Reliability figures for live mode (run on demand; the slow suite runs short forms).

    .venv/bin/python benchmarks/reliability.py sigkill [--kills 100] [--messages 3000]
                                                        [--no-smtp-source]
    .venv/bin/python benchmarks/reliability.py hostile [--streams 100000]
    .venv/bin/python benchmarks/reliability.py scenarios [--mutants 5000]

``sigkill``: ``mxsim serve`` runs a secondary MX relaying ``example.net``
to an aiosmtpd sink (in this process, a thread) on one fixed loopback
port.  Client threads send messages with unique Message-IDs and record
each one acknowledged (250 after DATA); a message not acknowledged is sent
again, as any client would.  Postfix's ``smtp-source`` adds untracked load
when installed.  Every few dozen acknowledgements the server is killed
with SIGKILL and started again on the same state folder.  At the end every
acknowledged message must be at the sink: lost = acknowledged and never
delivered (the figure that must be 0); duplicates = deliveries of a
message beyond its first (a delivery that happened before the crash could
record it: the at-least-once side of the guarantee).

``hostile`` runs the hypothesis state machine of
``tests/test_reliability_hostile.py`` with more streams; ``scenarios`` the
mutated-scenario test of ``tests/test_reliability_scenarios.py`` with more
mutants.
"""
from __future__ import annotations

import argparse
import collections
import os
import random
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MXSIM = str(Path(sys.executable).parent / "mxsim")
HOST = "mx2.example.net"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scenario(folder: Path, sink_port: int) -> Path:
    path = folder / "backup-mx.yaml"
    path.write_text(f"""\
name: reliability-sigkill
description: a backup MX relaying to its primary, killed under load
seed: 1
duration: 1h
hosts:
  - {{name: {HOST}, address: 192.0.2.11}}
roles:
  - role: secondary-mx
    host: {HOST}
    relay_domains: example.net
    routes: {{example.net: "[127.0.0.1]:{sink_port}"}}
""")
    return path


class Sink:
    """aiosmtpd handler counting deliveries per Message-ID."""

    def __init__(self) -> None:
        self.count: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        for line in envelope.content.split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                with self.lock:
                    self.count[line.split(b":", 1)[1].strip().decode()] += 1
                break
        return "250 2.0.0 Ok"


def start_sink() -> tuple[object, Sink, int]:
    from aiosmtpd.controller import Controller
    handler, port = Sink(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port,
                            server_hostname="sink.reliability.test", ready_timeout=10)
    controller.start()
    return controller, handler, port


def start_serve(path: Path, state: Path, port: int) -> subprocess.Popen:
    """``mxsim serve`` on 127.0.0.1:port; returns once it says ``serving``."""
    proc = subprocess.Popen([MXSIM, "serve", str(path), "--host", HOST, "--state", str(state),
                             "--listen", f"25=127.0.0.1:{port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"mxsim serve exited: {lines} {proc.stderr.read()}")
        lines.append(line)
        if line.startswith("serving "):
            return proc


def stop(proc: subprocess.Popen, sig: int) -> int:
    """Send ``sig`` to ``mxsim serve``; its exit status."""
    os.kill(proc.pid, sig)
    rc = proc.wait(60)
    proc.stdout.close()
    proc.stderr.close()
    return rc


@dataclass
class Load:
    """Client threads: each message is sent until it is acknowledged."""

    port: int
    total: int
    threads: int = 8
    acked: set[str] = field(default_factory=set)
    retries: int = 0
    _next: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> int | None:
        with self._lock:
            if self._next >= self.total:
                return None
            self._next += 1
            return self._next

    def worker(self) -> None:
        while (i := self.take()) is not None:
            mid = f"<r{i}@client.reliability.test>"
            data = f"Message-ID: {mid}\r\nSubject: {i}\r\n\r\n{'x' * 900}\r\n"
            while True:
                try:
                    with smtplib.SMTP("127.0.0.1", self.port, local_hostname="client.test",
                                      timeout=20) as c:
                        c.sendmail("s@client.test", [f"u{i % 50}@example.net"], data)
                    with self._lock:
                        self.acked.add(mid)
                    break
                except (smtplib.SMTPException, OSError):
                    with self._lock:
                        self.retries += 1
                    time.sleep(0.05)

    def start(self) -> list[threading.Thread]:
        ts = [threading.Thread(target=self.worker, daemon=True) for _ in range(self.threads)]
        for t in ts:
            t.start()
        return ts


def sigkill_run(kills: int, messages: int, *, smtp_source: bool = True, seed: int = 1,
                settle: float = 120.0, work: Path | None = None) -> dict:
    """Kill ``mxsim serve`` ``kills`` times while ``messages`` go through it."""
    rng = random.Random(seed)
    work = Path(work or tempfile.mkdtemp(prefix="mxsim-reliability-"))
    controller, sink, sink_port = start_sink()
    port = free_port()
    path = scenario(work, sink_port)
    proc = start_serve(path, work / "state", port)
    load = Load(port, messages)
    threads = load.start()
    def more_load() -> subprocess.Popen | None:
        # smtp-source gives up when the server goes away: start it again
        if not (smtp_source and shutil.which("smtp-source")):
            return None
        return subprocess.Popen([shutil.which("smtp-source"), "-s", "5", "-m", str(messages),
                                 "-l", "1024", "-M", "source.test", "-f", "s@source.test",
                                 "-t", "u@example.net", f"127.0.0.1:{port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    source = more_load()
    t0 = time.monotonic()
    done_kills = 0
    try:
        for _ in range(kills):
            target = min(messages, len(load.acked) + rng.randrange(10, 40))
            while len(load.acked) < target and any(t.is_alive() for t in threads):
                time.sleep(0.01)
            stop(proc, signal.SIGKILL)
            done_kills += 1
            proc = start_serve(path, work / "state", port)
            if source is not None and source.poll() is not None:
                source = more_load()
        for t in threads:
            t.join()
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline:
            with sink.lock:
                if all(sink.count[m] for m in load.acked):
                    break
            time.sleep(0.1)
    finally:
        if source is not None:
            source.kill()
            source.wait()
        rc = stop(proc, signal.SIGTERM)
        controller.stop()
    with sink.lock:
        tracked = {m: n for m, n in sink.count.items() if m.endswith("@client.reliability.test>")}
    lost = sorted(m for m in load.acked if not tracked.get(m))
    result = {"kills": done_kills, "acknowledged": len(load.acked),
              "delivered": sum(1 for n in tracked.values() if n), "lost": len(lost),
              "duplicates": sum(n - 1 for n in tracked.values() if n > 1),
              "client_retries": load.retries, "exit_after_sigterm": rc,
              "seconds": round(time.monotonic() - t0, 1), "lost_ids": lost[:10],
              "untracked_smtp_source": sum(n for m, n in sink.count.items() if m not in tracked)}
    shutil.rmtree(work, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    k = sub.add_parser("sigkill")
    k.add_argument("--kills", type=int, default=100)
    k.add_argument("--messages", type=int, default=3000)
    k.add_argument("--no-smtp-source", action="store_true")
    h = sub.add_parser("hostile")
    h.add_argument("--streams", type=int, default=100_000)
    s = sub.add_parser("scenarios")
    s.add_argument("--mutants", type=int, default=5000)
    a = p.parse_args(argv)
    if a.what == "sigkill":
        r = sigkill_run(a.kills, a.messages, smtp_source=not a.no_smtp_source)
        print(" ".join(f"{key}={value}" for key, value in r.items()))
        return 0 if r["lost"] == 0 else 1
    env = dict(os.environ)
    if a.what == "hostile":
        # ~23 streams per world, ~1.7 worlds per example (hypothesis' phases)
        env.update(MXSIM_HOSTILE_STREAMS=str(a.streams),
                   MXSIM_HOSTILE_EXAMPLES=str(a.streams // 35 + 1))
        test = "tests/test_reliability_hostile.py"
    else:
        env.update(MXSIM_MUTANTS=str(a.mutants))
        test = "tests/test_reliability_scenarios.py"
    return subprocess.run([sys.executable, "-m", "pytest", "-m", "slow", "-q", "-s", "-p",
                           "no:cacheprovider", test], cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
