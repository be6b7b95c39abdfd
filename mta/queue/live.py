"""A live queueing relay: the receiving server, a durable SQLite queue, and
delivery to one next hop.  Used by the SIGKILL test and benchmarks/relay.py.

    python -m mta.queue.live --db queue.db --port 0 --next-hop 127.0.0.1:2525

It prints ``READY <port> recovered=<n> loop=<asyncio|uvloop>`` once
listening (and after recovering whatever the database held), then relays
until killed.  ``--loop auto`` (the default) runs on uvloop when it is
installed (it is optional, not a dependency): the same asyncio code with
the loop's socket and timer machinery in C, about a fifth less CPU per
relayed message in benchmarks/relay.py.  Every message is
acknowledged only after its events and body are committed (WAL, group
commit, ``synchronous=FULL``); on start it replays the database and
delivers what was left.  Events go to ``--events`` as JSON lines, if given.

``--workers N`` runs N such relays in processes that share the port
(SO_REUSEPORT: the kernel spreads connections over them), each with its
own queue shard (``DB``, ``DB.1``, ... ``DB.N-1``) and its own group
commit: as Postfix runs many smtpd processes, the relay's accept path then
uses more than one core, and on a shared machine gets more than one
process's share of it.  Every 250 still waits for the commit of its own
shard.  A shard that exists and is not run (fewer workers than before)
is refused at start: its acknowledged mail would never be delivered.
The workers die with the parent (``PR_SET_PDEATHSIG``), so a SIGKILL of
the parent is a crash of them all.
"""
from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import signal
import socket
import subprocess
import sys

from mta.context import live_context
from mta.delivery.client import DeliveryConfig
from mta.delivery.routing import Route
from mta.events import Event, codec
from mta.events.sinks import NullSink
from mta.policy import PolicyChain
from mta.queue.manager import QueueManager
from mta.queue.policy import QueueConfig
from mta.queue.sqlite_store import SqliteStore
from mta.retry.presets import preset
from mta.smtp.config import ServerConfig
from mta.smtp.server import SmtpServer


class JsonlSink:
    """Appends each event as one canonical JSON line (flushed by the OS, not fsynced)."""

    def __init__(self, path: str) -> None:
        self._f = open(path, "a", buffering=1 << 16)

    def emit(self, event: Event) -> None:
        self._f.write(codec.encode(event) + "\n")

    def close(self) -> None:
        self._f.close()


async def run_relay(*, db: str, port: int, next_hop: tuple[str, int], hostname: str,
                    events: str | None = None, synchronous: str = "FULL",
                    concurrency: int = 20, ready=print, reuse_port: bool = False) -> None:
    sink = JsonlSink(events) if events else NullSink()
    ctx = live_context(hostname, sink, seed=0)
    store = SqliteStore(db, synchronous=synchronous)
    host, hop_port = next_hop
    delivery = DeliveryConfig(routes={"*": Route((host,), port=hop_port)},
                              connect_timeout=5.0, command_timeout=30.0,
                              max_idle_per_dest=concurrency, idle_timeout=2.0)
    queue = QueueManager(ctx, store,
                         QueueConfig(retry=preset("postfix", minimal_backoff=5, maximal_backoff=30,
                                                  queue_run_delay=0),
                                     max_deliveries=concurrency),
                         delivery)
    loop = asyncio.get_running_loop()
    recovered = await queue.start()
    server = SmtpServer(ctx, PolicyChain(), queue, ServerConfig(idle_timeout=60.0))
    srv = await server.start(host="127.0.0.1", port=port, reuse_port=reuse_port or None)
    bound = srv.sockets[0].getsockname()[1]
    ready(f"READY {bound} recovered={recovered} loop={type(loop).__module__.partition('.')[0]}")
    sys.stdout.flush()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    # A clean stop (SIGKILL is the crash the tests use): close in order.
    await server.stop()
    await queue.close()
    print(f"STATS batches={store.batches} commits={store.commits}", file=sys.stderr, flush=True)
    store.close()
    if isinstance(sink, JsonlSink):
        sink.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--next-hop", required=True, help="IP:PORT of the next hop")
    p.add_argument("--hostname", default="relay.mxsim.test")
    p.add_argument("--events", default=None)
    p.add_argument("--synchronous", default="FULL", choices=["FULL", "NORMAL"])
    p.add_argument("--concurrency", type=int, default=20)
    p.add_argument("--loop", default="auto", choices=["auto", "asyncio", "uvloop"],
                   help="event loop: uvloop if installed (auto), or the standard one")
    p.add_argument("--workers", type=int, default=1,
                   help="relay processes sharing the port, one queue shard each")
    p.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)  # a worker
    a = p.parse_args(argv)
    if a.workers < 1:
        p.error(f"--workers {a.workers}: expected at least 1")
    if not a.reuse_port:
        left = [shard(a.db, i) for i in range(a.workers, a.workers + _SHARD_SCAN)
                if os.path.exists(shard(a.db, i))]
        if left:
            p.error(f"--workers {a.workers}: {left[0]} holds a queue shard no worker would run "
                    "(start at least as many workers as before)")
    if a.workers > 1:
        raise SystemExit(supervise(a, argv if argv is not None else sys.argv[1:]))
    ip, _, hop_port = a.next_hop.rpartition(":")
    relay = run_relay(db=a.db, port=a.port, next_hop=(ip, int(hop_port)), hostname=a.hostname,
                      events=a.events, synchronous=a.synchronous, concurrency=a.concurrency,
                      reuse_port=a.reuse_port)
    new_loop = _loop_factory(a.loop)
    with asyncio.Runner(loop_factory=new_loop) as runner:
        runner.run(relay)


def shard(db: str, i: int) -> str:
    """The database file of worker ``i``."""
    return db if i == 0 else f"{db}.{i}"


#: Shards looked for beyond ``--workers`` before starting fewer.
_SHARD_SCAN = 64


def supervise(a: argparse.Namespace, argv: list[str]) -> int:
    """Run ``a.workers`` relays on one port (see the module docstring);
    prints one ``READY`` line for all of them, forwards SIGTERM/SIGINT."""
    # Hold the port (bound, not listening) until every worker listens on it.
    hold = socket.socket()
    hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    hold.bind(("127.0.0.1", a.port))
    port = hold.getsockname()[1]
    base = _without(argv, {"--workers", "--db", "--port", "--events", "--concurrency"})
    children = []
    for i in range(a.workers):
        args = [sys.executable, "-m", "mta.queue.live", *base, "--db", shard(a.db, i),
                "--port", str(port), "--reuse-port",
                "--concurrency", str(max(1, a.concurrency // a.workers))]
        if a.events:
            args += ["--events", shard(a.events, i)]
        children.append(subprocess.Popen(args, stdout=subprocess.PIPE, text=True,
                                         preexec_fn=_die_with_parent))
    recovered, loop = 0, "?"
    for child in children:
        ready = child.stdout.readline().split()
        if not ready or ready[0] != "READY":
            for c in children:
                c.kill()
            print("a worker did not start", file=sys.stderr)
            return 1
        recovered += int(ready[2].partition("=")[2])
        loop = ready[3].partition("=")[2]
    hold.close()
    print(f"READY {port} recovered={recovered} loop={loop} workers={a.workers}", flush=True)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: [c.send_signal(signum) for c in children])
    return max(c.wait() for c in children)


def _without(argv: list[str], options: set[str]) -> list[str]:
    """``argv`` less the given options (and their values)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in options:
            skip = True
        elif arg.partition("=")[0] not in options:
            out.append(arg)
    return out


def _die_with_parent() -> None:
    """In a worker, before exec: get SIGKILL when the supervisor dies."""
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)     # PR_SET_PDEATHSIG


def _loop_factory(choice: str):
    """The event loop factory for ``--loop`` (None: asyncio's default).

    uvloop runs the same asyncio code with its socket and timer machinery
    in C; it is optional (not a dependency), so ``auto`` falls back to the
    standard loop when it is not installed."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise SystemExit("--loop uvloop: uvloop is not installed") from None
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":
    main()
