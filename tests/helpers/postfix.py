"""A private, real Postfix instance on loopback, for slow tests.

Each instance lives in its own directory: ``main.cf`` and ``master.cf``
written here, its own ``queue_directory`` and ``data_directory``, and its
log in ``maillog_file`` through postlogd (no syslog).  Nothing is shared
with the system Postfix or with other instances, so several can run at
once, also under ``pytest -n 2``.  Debian package: ``postfix`` (3.7).

    with PostfixInstance(free_port(),
                         relayhost=f"[127.0.0.1]:{sink_port}",
                         settings={"minimal_backoff_time": "4s"}) as pf:
        pf.send("a@sender.example", ["b@dest.example"], b"Subject: x\\r\\n\\r\\nhi\\r\\n")
        pf.queue()       # postqueue -j: one dict per queued message
        pf.maillog()     # the log text so far

A missing Postfix raises :class:`PostfixMissing` naming the apt line, so a
slow test fails clearly instead of skipping.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Mapping, Sequence

APT_LINE = "apt-get install -y postfix"
POSTFIX = "/usr/sbin/postfix"
POSTQUEUE = "/usr/sbin/postqueue"
POSTSUPER = "/usr/sbin/postsuper"


class PostfixMissing(RuntimeError):
    """Postfix is not installed; the message names the apt line."""


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Every service chroot-free and unprivileged-free ("n" in the chroot column),
# so the instance needs no files copied into a jail.
_MASTER_CF = """\
{port}      inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PostfixInstance:
    """A Postfix instance in ``root``, its smtpd on ``127.0.0.1:port``.

    ``root`` gets ``conf/`` (main.cf, master.cf), ``queue/``, ``data/``
    and ``maillog``; by default a fresh ``/tmp/mxsim-postfix-*`` directory,
    removed by :meth:`stop` (a ``root`` of the caller's must be searchable
    by the postfix user, and is kept).
    ``relayhost`` (e.g. ``"[127.0.0.1]:2525"``) and ``transport_maps``
    (a ``{domain: "smtp:[127.0.0.1]:2525"}`` table, written as a texthash
    map) route outgoing mail; ``mydestination`` is empty by default (no local
    delivery); ``settings`` are any further ``main.cf`` parameters, written
    last so they win.  Use it as a context manager, or call :meth:`start`
    and :meth:`stop`.
    """

    def __init__(self, port: int, *, root: Path | None = None, relayhost: str = "",
                 transport_maps: Mapping[str, str] | None = None, mydestination: str = "",
                 mynetworks: str = "127.0.0.0/8", settings: Mapping[str, str] | None = None,
                 hostname: str = "pf.mxsim.test") -> None:
        if not (shutil.which(POSTFIX) and shutil.which(POSTQUEUE)):
            raise PostfixMissing(f"Postfix is not installed: {APT_LINE}")
        # The daemons run as the postfix user and must reach the queue: pytest's
        # base temporary directory is 0700 (and other pytest sessions reset it).
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="mxsim-postfix-") if root is None
                         else root).resolve()
        self.port = port
        # postfix-script wants everything below the config directory owned by
        # root, the queue owned by postfix: keep them apart.
        self.config_directory = self.root / "conf"
        self.queue_directory = self.root / "queue"
        self.data_directory = self.root / "data"
        self.maillog_path = self.root / "maillog"
        self._main: dict[str, str] = {
            "compatibility_level": "3.6",
            "myhostname": hostname,
            "mydomain": hostname.split(".", 1)[-1],
            "mydestination": mydestination,
            "mynetworks": mynetworks,
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "relayhost": relayhost,
            "queue_directory": str(self.queue_directory),
            "data_directory": str(self.data_directory),
            "maillog_file": str(self.maillog_path),
            "maillog_file_prefixes": str(self.root),
            "alias_maps": "", "alias_database": "",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "smtp_host_lookup": "native",   # loopback literals: no DNS needed
            "disable_dns_lookups": "yes",
            "biff": "no",
            "readme_directory": "no",
            "smtputf8_enable": "no",
        }
        if transport_maps:
            table = self.config_directory / "transport"
            self._transport = "".join(f"{d} {t}\n" for d, t in sorted(transport_maps.items()))
            self._main["transport_maps"] = f"texthash:{table}"
        else:
            self._transport = None
        self._main.update(settings or {})

    # -- lifecycle -----------------------------------------------------------------

    def start(self, timeout: float = 20.0) -> "PostfixInstance":
        """Write the configuration, start the instance and wait until smtpd answers."""
        self.config_directory.mkdir(parents=True, exist_ok=True)
        (self.config_directory / "main.cf").write_text(
            "".join(f"{k} = {v}\n" for k, v in self._main.items()))
        (self.config_directory / "master.cf").write_text(
            _MASTER_CF.format(port=f"127.0.0.1:{self.port}"))
        if self._transport is not None:
            (self.config_directory / "transport").write_text(self._transport)
        self.queue_directory.mkdir(exist_ok=True)
        self.data_directory.mkdir(exist_ok=True)
        shutil.chown(self.data_directory, user="postfix")
        self.root.chmod(0o711)
        try:
            self._postfix("start")
        except RuntimeError as exc:
            log = self.maillog()[-2000:]
            self.stop()
            raise RuntimeError(f"{exc}\n{log}") from None
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(512).startswith(b"220"):
                        s.sendall(b"QUIT\r\n")
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                log = self.maillog()[-2000:]
                self.stop()
                raise RuntimeError(f"Postfix in {self.root} did not answer on port {self.port}:\n"
                                   f"{log}")
            time.sleep(0.1)

    def stop(self) -> None:
        """``postfix stop``, then kill the master by its PID if it is still
        alive; remove the instance's directory if this object made it."""
        try:
            subprocess.run([POSTFIX, "-c", str(self.config_directory), "stop"],
                           capture_output=True, timeout=30)
            pid = self.master_pid()
            deadline = time.monotonic() + 10
            while pid is not None and _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if pid is not None and _alive(pid):
                os.kill(pid, signal.SIGKILL)
        finally:
            if self._own_root:
                shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "PostfixInstance":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def master_pid(self) -> int | None:
        """The master's PID from ``queue/pid/master.pid``, or None."""
        try:
            return int((self.queue_directory / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    # -- using it ------------------------------------------------------------------

    def send(self, mail_from: str, rcpts: Sequence[str], data: bytes) -> None:
        """Submit one message over SMTP to this instance's smtpd."""
        with smtplib.SMTP("127.0.0.1", self.port, local_hostname="client.mxsim.test",
                          timeout=10) as s:
            s.sendmail(mail_from, list(rcpts), data)

    def queue(self) -> list[dict]:
        """``postqueue -j``: one dict per queued message (``queue_name``, ``queue_id``,
        ``arrival_time``, ``sender``, ``recipients`` with ``delay_reason``...)."""
        out = self._run([POSTQUEUE, "-c", str(self.config_directory), "-j"])
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def delete(self, queue_id: str) -> None:
        """``postsuper -d``: remove one message from the queue."""
        self._run([POSTSUPER, "-c", str(self.config_directory), "-d", queue_id])

    def flush(self) -> None:
        """``postqueue -f``: try every deferred message now."""
        self._run([POSTQUEUE, "-c", str(self.config_directory), "-f"])

    def queue_file(self, queue_id: str, queue_name: str = "deferred") -> Path | None:
        """The file of ``queue_id`` in ``queue_name`` (hashed subdirectories), or None."""
        found = sorted((self.queue_directory / queue_name).rglob(queue_id))
        return found[0] if found else None

    def maillog(self) -> str:
        """The instance's log so far ("" before the first line)."""
        try:
            return self.maillog_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- internals -----------------------------------------------------------------

    def _postfix(self, command: str) -> None:
        self._run([POSTFIX, "-c", str(self.config_directory), command])

    @staticmethod
    def _run(argv: list[str]) -> str:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}:\n"
                               f"{done.stdout}{done.stderr}")
        return done.stdout


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
