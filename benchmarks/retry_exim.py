"""The ``exim`` preset with per-destination retry records against a real Exim 4.96.

    .venv/bin/python benchmarks/retry_exim.py [--cache /tmp/mxsim-exim]

Exim and Postfix conflict as Debian packages, so Exim is not installed:
``apt-get download exim4-daemon-light libidn12`` and ``dpkg -x`` put its
binary in ``--cache``.  It runs as root with ``-C`` (its own configuration
and spool) in a private mount namespace (``unshare -m``) that adds the
``Debian-exim`` user it was built for and a loader cache naming the
extracted libidn, so nothing on the system changes.

The story (shortened timers; ``F,40s,6s``, ``ignore_bounce_errors_after``
60 s; queue runs every 5 s, triggered with ``exim -q``, as Debian's daemon
does every 30 min with ``-q30m``): two messages to a destination that
refuses connections, A at 0 and B at 20 s; the DSNs (named by creation
order) go to a sender's domain that refuses too.  Real Exim tries A at arrival and at queue runs
once the host's retry time has come; B waits for that same host's retry
time (and, behind A in the queue run, never gets a try of its own); both
bounce when the host has been failing for more than 40 s, B at half that
age.  The DSNs time out, are frozen until they are 60 s old, are tried
once more and discarded.

The same story runs through mxsim's simulated queue with
``preset("exim", rules="F,40s,6s", per_host=True, queue_interval=5,
ignore_bounce_errors_after=60)``.  The script prints both timelines (times
from the first queue run's grid origin) and the agreement: attempts per
message, the worst attempt error, and the give-up and discard times.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mta import events as ev  # noqa: E402
from mta.queue.policy import QueueConfig  # noqa: E402
from mta.retry.presets import preset  # noqa: E402

PACKAGES = ("exim4-daemon-light", "libidn12")
EXIM_UID = 64001               # the Debian-exim user, inside the namespace only
RULES = "F,40s,6s"
IGNORE_BOUNCE_ERRORS_AFTER = 60
QUEUE_INTERVAL = 5
B_AFTER = 20                   # B is submitted this long after A
RUN_FOR = 150


# -- getting a runnable exim --------------------------------------------------------

def prepare(cache: Path) -> Path:
    """Download and unpack Exim into ``cache`` (once); the wrapper script that
    runs it.  Raises RuntimeError saying why when it cannot run here."""
    root = cache / "root"
    binary = root / "usr/sbin/exim4"
    if not binary.exists():
        cache.mkdir(parents=True, exist_ok=True)
        got = subprocess.run(["apt-get", "download", *PACKAGES], cwd=cache,
                             capture_output=True, text=True)
        if got.returncode != 0:
            raise RuntimeError(f"apt-get download {' '.join(PACKAGES)} failed:\n{got.stderr}")
        for deb in sorted(cache.glob("*.deb")):
            subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
    passwd, group = cache / "passwd", cache / "group"
    passwd.write_text(Path("/etc/passwd").read_text()
                      + f"Debian-exim:x:{EXIM_UID}:{EXIM_UID}::/nonexistent:/usr/sbin/nologin\n")
    group.write_text(Path("/etc/group").read_text() + f"Debian-exim:x:{EXIM_UID}:\n")
    conf = cache / "ld.so.conf"
    conf.write_text(f"{root}/usr/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu\n"
                    "/usr/lib/x86_64-linux-gnu\n")
    subprocess.run(["ldconfig", "-C", str(cache / "ld.so.cache"), "-f", str(conf)], check=True)
    wrapper = cache / "exim"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"mount --bind {passwd} /etc/passwd && mount --bind {group} /etc/group && "
        f"mount --bind {cache / 'ld.so.cache'} /etc/ld.so.cache && exec {binary} \"$@\"\n")
    wrapper.chmod(0o755)
    check = subprocess.run(["unshare", "-m", str(wrapper), "-bV"], capture_output=True, text=True)
    if "Exim version" not in check.stdout:  # -bV exits 1 here: no default configuration
        raise RuntimeError(f"the extracted exim does not run: {check.stdout}{check.stderr}")
    return wrapper


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CONFIG = """\
primary_hostname = exim.mxsim.test
spool_directory = {dir}/spool
log_file_path = {dir}/log/%slog
log_selector = +millisec
exim_path = {binary}
queue_run_in_order = true
ignore_bounce_errors_after = {ignore}s
delay_warning = 0s
begin routers
to_dest:
  driver = manualroute
  domains = dest.example
  route_list = * 127.0.0.1
  self = send
  transport = dest_smtp
to_sender:
  driver = manualroute
  domains = sender.example
  route_list = * 127.0.0.1
  self = send
  transport = sender_smtp
begin transports
dest_smtp:
  driver = smtp
  port = {dest_port}
  allow_localhost
sender_smtp:
  driver = smtp
  port = {sender_port}
  allow_localhost
begin retry
*  *  {rules}
"""


# -- one real run ----------------------------------------------------------------------

@dataclass
class Fate:
    """What happened to one message (times from the grid origin)."""

    attempts: list[float] = field(default_factory=list)
    waits: int = 0                     # rounds held back: retry time not reached
    gave_up: float | None = None       # bounced (or, for a DSN, discarded)
    thawed: float | None = None        # a frozen DSN tried once more


_LINE = re.compile(r"^(\S+ \S+) (\S{6}-\S{6}-\S{2}) (.*)$")


def run_real(wrapper: Path) -> dict[str, Fate]:
    work = Path(tempfile.mkdtemp(prefix="mxsim-exim-"))
    work.chmod(0o711)   # deliveries run as Debian-exim (-C drops root for them)
    try:
        for d in ("spool", "log"):
            (work / d).mkdir()
            os.chown(work / d, EXIM_UID, EXIM_UID)
        binary = wrapper.read_text().rsplit("exec ", 1)[1].split()[0]
        config = work / "exim.conf"
        config.write_text(CONFIG.format(dir=work, binary=binary, ignore=IGNORE_BOUNCE_ERRORS_AFTER,
                                        dest_port=free_port(), sender_port=free_port(),
                                        rules=RULES))

        def exim(*args: str, data: bytes | None = None) -> None:
            done = subprocess.run(["unshare", "-m", str(wrapper), "-C", str(config), *args],
                                  input=data, capture_output=True)
            if done.returncode != 0:
                raise RuntimeError(f"exim {' '.join(args)}: {done.stderr.decode()}")

        origin = float(int(time.time()) + 2)      # the queue runs' grid: origin + 5k
        plan = [(0.2, "submit A"), (B_AFTER + 0.2, "submit B")]
        plan += [(k * QUEUE_INTERVAL, "queue run") for k in range(1, RUN_FOR // QUEUE_INTERVAL)]
        for at, what in sorted(plan):
            time.sleep(max(0.0, origin + at - time.time()))
            if what == "queue run":
                exim("-q")
            else:
                exim("-odf", "-f", "alice@sender.example", "bob@dest.example",
                     data=f"Subject: {what}\n\nhello\n".encode())
        return parse_log((work / "log" / "mainlog").read_text(), origin)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def parse_log(text: str, origin: float) -> dict[str, Fate]:
    """Fates by name: ``A``, ``B`` (in arrival order), ``dsn 1``, ``dsn 2``
    (in creation order: which message a DSN is about does not change its fate)."""
    names: dict[str, str] = {}
    fates: dict[str, Fate] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        t = datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S.%f").timestamp() - origin
        mid, rest = m[2], m[3]
        if rest.startswith("<= alice@"):
            names[mid] = "AB"[sum(1 for n in names.values() if len(n) == 1)]
        elif rest.startswith("<= <>"):
            names[mid] = f"dsn {sum(1 for n in names.values() if n.startswith('dsn')) + 1}"
        name = names.get(mid)
        if name is None:
            continue
        fate = fates.setdefault(name, Fate())
        if "defer (111)" in rest:
            fate.attempts.append(t)
        elif rest.startswith("**") and not name.startswith("dsn"):
            fate.gave_up = t
        elif "defer (" in rest and "retry time not reached" in rest:
            fate.waits += 1
        elif "Unfrozen by errmsg timer" in rest:
            fate.thawed = t
        elif rest.endswith("error ignored"):
            fate.gave_up = t                  # a DSN discarded
    return fates


# -- the same story through mxsim's queue ---------------------------------------------

ZONES = """\
$ORIGIN dest.example.
@ 3600 IN SOA ns hostmaster 1 3600 600 86400 60
@ 3600 IN MX 10 mx
mx 3600 IN A 192.0.2.2
$ORIGIN sender.example.
@ 3600 IN SOA ns hostmaster 1 3600 600 86400 60
@ 3600 IN MX 10 mx
mx 3600 IN A 192.0.2.3
"""


def run_model() -> dict[str, Fate]:
    from mta.delivery.client import DeliveryConfig
    from mta.queue.manager import QueueManager
    from mta.queue.scheduling import RETRY_TIME_NOT_REACHED
    from mta.queue.store import MemoryStore
    from sim.world.core import World
    from sim.world.disk import SimulatedDisk
    from sim.world.network import LinkSpec

    schedule = preset("exim", rules=RULES, per_host=True, queue_interval=QUEUE_INTERVAL,
                      ignore_bounce_errors_after=IGNORE_BOUNCE_ERRORS_AFTER, delay_warning=0)
    world = World(seed=1)
    host = world.add_host("exim.mxsim.test", "192.0.2.1", link=LinkSpec(latency=0.0))
    world.add_host("mx.dest.example", "192.0.2.2", link=LinkSpec(latency=0.0))   # refuses
    world.add_host("mx.sender.example", "192.0.2.3", link=LinkSpec(latency=0.0))
    world.set_zones(ZONES)
    queue = QueueManager(host.ctx, MemoryStore(SimulatedDisk()), QueueConfig(retry=schedule),
                         DeliveryConfig(connect_timeout=30, command_timeout=60))
    world.run_until_complete(host, queue.start())
    names: dict[str, str] = {}
    for name, at in (("A", 0.2), ("B", B_AFTER + 0.2)):
        world.run(until=at)
        msg = world.run_until_complete(host, queue.submit(
            "alice@sender.example", ["bob@dest.example"], b"Subject: x\r\n\r\nhello\r\n"))
        names[msg] = name
    world.run(until=RUN_FOR)
    for e in world.events:
        if isinstance(e, ev.DsnCreated):
            names[e.msg] = f"dsn {sum(1 for n in names.values() if n.startswith('dsn')) + 1}"
    fates: dict[str, Fate] = {}
    frozen: set[str] = set()
    for e in world.events:
        name = names.get(getattr(e, "msg", ""))
        if name is None:
            continue
        fate = fates.setdefault(name, Fate())
        if isinstance(e, ev.AttemptStarted):
            if e.msg in frozen:
                fate.thawed = e.t
            fate.attempts.append(e.t)
        elif isinstance(e, ev.Deferred) and (e.code, e.text) == RETRY_TIME_NOT_REACHED:
            fate.waits += 1
        elif isinstance(e, ev.Deferred) and e.code >= 500:
            frozen.add(e.msg)                 # a bounce frozen until it is thawed
        elif isinstance(e, ev.Bounced):
            fate.gave_up = e.t
    return fates


def compare(real: dict[str, Fate], model: dict[str, Fate]) -> list[str]:
    lines = [f"{'message':8} {'attempts real/model':>20} {'worst error':>12} "
             f"{'waits real/model':>17} {'gave up real/model':>19} {'thawed real/model':>18}"]
    for name in ("A", "B", "dsn 1", "dsn 2"):
        r, m = real.get(name, Fate()), model.get(name, Fate())
        worst = (max((abs(a - b) for a, b in zip(r.attempts, m.attempts)), default=0.0)
                 if len(r.attempts) == len(m.attempts) else float("nan"))
        lines.append(f"{name:8} {len(r.attempts):>10}/{len(m.attempts):<9} {worst:>12.2f} "
                     f"{r.waits:>8}/{m.waits:<8} {_t(r.gave_up):>9}/{_t(m.gave_up):<9} "
                     f"{_t(r.thawed):>8}/{_t(m.thawed):<9}")
        lines.append(f"{'':8} real  {[round(t, 1) for t in r.attempts]}")
        lines.append(f"{'':8} model {[round(t, 1) for t in m.attempts]}")
    return lines


def _t(t: float | None) -> str:
    return "-" if t is None else f"{t:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/mxsim-exim"),
                        help="where the Exim packages are unpacked (default /tmp/mxsim-exim)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("run as root: exim runs with -C and a private mount namespace")
    try:
        wrapper = prepare(args.cache)
    except RuntimeError as exc:
        parser.exit(2, f"retry_exim: {exc}\n")
    model = run_model()
    print(f"real Exim run: about {RUN_FOR} s of wall time...", flush=True)
    real = run_real(wrapper)
    print("\n".join(compare(real, model)))


if __name__ == "__main__":
    main()
