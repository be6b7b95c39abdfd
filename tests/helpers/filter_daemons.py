"""Real clamd and spamd on loopback, started from configs written to a tmp dir.

Debian packages: ``clamav-daemon`` (clamd), ``spamassassin`` and ``spamd``.
Nothing is auto-started: each daemon runs in the foreground as our child,
is ready when it answers PING, and is stopped by its PID.  A missing binary
raises :class:`DaemonMissing` naming the package, so CI fails clearly
instead of skipping.

clamd gets a signature database written here (freshclam cannot reach its
servers offline): one ``.ndb`` body signature of the EICAR string, target
type 0 and offset ``*``, which clamd applies to the raw stream and to every
part it decodes (base64, quoted-printable, zip, nested messages).  Its
limits match the built-in scanner's test limits, and ``AlertExceedsMax``
makes a limit a ``Heuristics.Limits.Exceeded`` finding instead of a silent
pass.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from mta.filters.virus import EICAR, EICAR_NAME

APT_LINE = "apt-get install -y clamav-daemon spamassassin spamd"

# Limits shared by the test clamd and the built-in scanner it is compared with.
SCAN_MAX_TOTAL = 20 * 1024 * 1024
SCAN_MAX_FILES = 200
SCAN_MAX_RECURSION = 10


class DaemonMissing(RuntimeError):
    """A daemon binary is not installed; the message names the apt line."""


@dataclass
class Daemon:
    name: str
    port: int
    proc: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _binary(name: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}")
                                  else None)
    if path is None:
        raise DaemonMissing(f"{name} is not installed: {APT_LINE}")
    return path


def _wait_ready(daemon: Daemon, probe: bytes, expect: bytes, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if daemon.proc.poll() is not None:
            raise RuntimeError(f"{daemon.name} exited with {daemon.proc.returncode}: "
                               f"{daemon.log.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", daemon.port), timeout=2) as s:
                s.sendall(probe)
                if expect in s.recv(256):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{daemon.name} did not answer PING within {timeout:g} s: "
                       f"{daemon.log.read_text(errors='replace')[-2000:]}")


def stop(daemon: Daemon) -> None:
    """SIGTERM the daemon by PID, SIGKILL if it lingers, reap it."""
    if daemon.proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(daemon.pid, signal.SIGCONT)   # a test may have stopped it
            os.kill(daemon.pid, signal.SIGTERM)
        try:
            daemon.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(daemon.pid, signal.SIGKILL)
            daemon.proc.wait(timeout=15)


def write_clamd_config(tmp: Path, port: int) -> Path:
    db = tmp / "db"
    db.mkdir(parents=True, exist_ok=True)
    (db / "eicar.ndb").write_text(f"{EICAR_NAME}:0:*:{EICAR.hex()}\n")
    conf = tmp / "clamd.conf"
    conf.write_text("\n".join([
        "Foreground yes",
        f"TCPSocket {port}",
        "TCPAddr 127.0.0.1",
        f"DatabaseDirectory {db}",
        f"TemporaryDirectory {tmp}",
        f"LogFile {tmp / 'clamd.log'}",
        "LogTime yes",
        "StreamMaxLength 64M",
        f"MaxScanSize {SCAN_MAX_TOTAL}",
        f"MaxFileSize {SCAN_MAX_TOTAL}",
        f"MaxFiles {SCAN_MAX_FILES}",
        f"MaxRecursion {SCAN_MAX_RECURSION}",
        "AlertExceedsMax yes",
        "SelfCheck 0",
        "",
    ]))
    return conf


@contextlib.contextmanager
def clamd(tmp: Path) -> Iterator[Daemon]:
    """A clamd on a free loopback port, as a child process."""
    binary = _binary("clamd")
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = write_clamd_config(tmp, port)
    log = tmp / "clamd.out"
    with open(log, "wb") as out:
        proc = subprocess.Popen([binary, "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    daemon = Daemon("clamd", port, proc, log)
    try:
        _wait_ready(daemon, b"nPING\n", b"PONG", timeout=60)
        yield daemon
    finally:
        stop(daemon)


@contextlib.contextmanager
def spamd(tmp: Path) -> Iterator[Daemon]:
    """A spamd on a free loopback port, as a child process: local tests
    only (``-L``, no DNS), no user configs (``-x``), no Bayes, children run
    as ``nobody`` (spamd refuses to run them as root)."""
    binary = _binary("spamd")
    tmp.mkdir(parents=True, exist_ok=True)
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    os.chmod(home, 0o777)
    port = free_port()
    log = tmp / "spamd.out"
    args = [binary, f"--listen=127.0.0.1:{port}", "-x", "-L", "-u", "nobody",
            f"--helper-home-dir={home}", f"--pidfile={tmp / 'spamd.pid'}",
            "--max-children=2", "--min-children=1", "--cf=use_bayes 0",
            "--syslog=stderr"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    daemon = Daemon("spamd", port, proc, log)
    try:
        _wait_ready(daemon, b"PING SPAMC/1.5\r\n\r\n", b"PONG", timeout=120)
        yield daemon
    finally:
        stop(daemon)
