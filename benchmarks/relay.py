"""Benchmark: the live durable relay (accept, SQLite WAL queue, deliver to a sink).

    .venv/bin/python benchmarks/relay.py [--messages 5000] [--sessions 20] [--size 1024]
                                         [--no-postfix] [--rounds 3] [--loop auto]
                                         [--relay live|serve] [--workers N]

Load: Postfix's ``smtp-source -s 20 -m N -l 1024`` (a new connection per
message, 20 at a time) when installed, else an aiosmtplib generator with
the same shape.  The relay under test is ``python -m mta.queue.live``
(mta/smtp/server.py in front of a QueueManager with a SqliteStore,
``synchronous=FULL``: each acknowledged message is fsynced, in groups)
relaying every message to an aiosmtpd sink in its own process.  Reported:
accepted msg/s (until the load generator got its last 250) and delivered
msg/s (until the sink holds every message), and CPU milliseconds per
message: the relay process (its kernel part in brackets), the sink, and
the whole machine (for Postfix, the machine less the sink stands for the
relay: its work is spread over short-lived processes).  The machine is
shared, so rates swing between runs; CPU per message is steadier.  If
Postfix is installed the same load runs against Postfix relaying
(``relayhost``) to the same kind of sink, alternating with ours, and the
ratio is printed.  Postfix is a private instance
(``tests/helpers/postfix.py``: its own configuration and queue folders,
started and stopped by the benchmark), never the system's ``/etc/postfix``.
``--loop`` picks the relay's event loop (uvloop, an
optional package, when installed).  ``--relay serve`` measures ``mxsim
serve`` instead: a scenario's backup MX (its whole policy chain and event
log) on the standard asyncio loop.  Loopback only, bounded.

To install Postfix for the comparison (Debian, as root):
    DEBIAN_FRONTEND=noninteractive apt-get install -y postfix
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = sys.executable


# -- the sink (its own process) ---------------------------------------------------

def run_sink(expect: int) -> None:
    """aiosmtpd sink: prints ``SINK <port>``, then ``DONE <n> <first> <last>``
    (wall times) once ``expect`` messages arrived."""
    from aiosmtpd.smtp import SMTP

    state = {"n": 0, "first": 0.0, "last": 0.0}
    done = asyncio.Event()

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            now = time.time()
            if state["n"] == 0:
                state["first"] = now
            state["n"] += 1
            state["last"] = now
            if state["n"] >= expect:
                done.set()
            return "250 2.0.0 Ok: queued"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        srv = await loop.create_server(lambda: SMTP(Handler(), hostname="sink.bench.test"),
                                       "127.0.0.1", 0)
        print(f"SINK {srv.sockets[0].getsockname()[1]}", flush=True)
        await done.wait()
        print(f"DONE {state['n']} {state['first']:.6f} {state['last']:.6f}", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())


def start_sink(expect: int) -> tuple[subprocess.Popen, int]:
    p = subprocess.Popen([PY, os.path.abspath(__file__), "--role", "sink", "--messages", str(expect)],
                         stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().split()
    assert line[0] == "SINK", line
    return p, int(line[1])


def wait_sink(p: subprocess.Popen, timeout: float) -> tuple[int, float, float]:
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    end = time.time() + timeout
    while time.time() < end:
        if sel.select(timeout=max(0.0, end - time.time())):
            parts = p.stdout.readline().split()
            if parts and parts[0] == "DONE":
                return int(parts[1]), float(parts[2]), float(parts[3])
    raise TimeoutError("the sink did not get every message in time")


# -- CPU accounting ----------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int, part: str = "both") -> float:
    """CPU seconds used so far by process ``pid``: ``user``, ``system`` or ``both``."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    user, system = int(fields[11]) / _TICK, int(fields[12]) / _TICK
    return {"user": user, "system": system, "both": user + system}[part]


def relay_pids(pid: int) -> list[int]:
    """The relay process and its workers (``--workers``: its children)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [pid, *(int(c) for c in f.read().split())]
    except OSError:
        return [pid]


def tree_cpu(pids: list[int], part: str = "both") -> float:
    return sum(proc_cpu(p, part) for p in pids)


def machine_cpu() -> float:
    """CPU seconds the whole machine spent busy (not idle or iowait) so far."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / _TICK


# -- load ------------------------------------------------------------------------

def load(port: int, messages: int, sessions: int, size: int) -> float:
    """Drive ``127.0.0.1:port``; returns the wall time the last 250 arrived."""
    src = shutil.which("smtp-source")
    if src:
        subprocess.run([src, "-s", str(sessions), "-m", str(messages), "-l", str(size),
                        "-M", "client.bench.test", "-f", "sender@client.bench.test",
                        "-t", "rcpt@dest.bench.test", f"127.0.0.1:{port}"], check=True)
        return time.time()
    return asyncio.run(_py_load(port, messages, sessions, size))


async def _py_load(port: int, messages: int, sessions: int, size: int) -> float:
    import aiosmtplib
    body = ("Subject: bench\r\n\r\n" + "x" * max(0, size - 20) + "\r\n").encode()
    todo = iter(range(messages))

    async def worker() -> None:
        for _ in todo:
            await aiosmtplib.send(body, sender="sender@client.bench.test",
                                  recipients=["rcpt@dest.bench.test"], hostname="127.0.0.1",
                                  port=port, local_hostname="client.bench.test", timeout=30)
    await asyncio.gather(*(worker() for _ in range(sessions)))
    return time.time()


# -- the two relays ---------------------------------------------------------------

SERVE_SCENARIO = """\
name: relay-bench
seed: 1
duration: 1h
hosts:
  - {{name: mx2.bench.test, address: 192.0.2.11}}
roles:
  - role: secondary-mx
    host: mx2.bench.test
    relay_domains: dest.bench.test
    routes: {{dest.bench.test: "[127.0.0.1]:{port}"}}
"""


def start_relay(kind: str, work: str, sink_port: int, sessions: int,
                loop: str, workers: int = 1) -> tuple[subprocess.Popen, int, str]:
    """The relay under test: ``python -m mta.queue.live`` (``live``), or
    ``mxsim serve`` running a backup MX relaying to the sink (``serve``,
    the standard asyncio loop).  Returns (process, port, loop used)."""
    if kind == "live":
        relay = subprocess.Popen([PY, "-m", "mta.queue.live", "--db",
                                  os.path.join(work, "queue.db"), "--port", "0", "--next-hop",
                                  f"127.0.0.1:{sink_port}", "--concurrency", str(sessions),
                                  "--loop", loop, "--workers", str(workers)],
                                 stdout=subprocess.PIPE, text=True, cwd=ROOT)
        ready = relay.stdout.readline().split()
        return relay, int(ready[1]), ready[3].partition("=")[2] if len(ready) > 3 else "?"
    scenario = os.path.join(work, "relay.yaml")
    with open(scenario, "w") as f:
        f.write(SERVE_SCENARIO.format(port=sink_port))
    mxsim = os.path.join(os.path.dirname(PY), "mxsim")
    relay = subprocess.Popen([mxsim, "serve", scenario, "--host", "mx2.bench.test", "--state",
                              os.path.join(work, "state"), "--listen", "25=127.0.0.1:0"],
                             stdout=subprocess.PIPE, text=True, cwd=ROOT)
    port = 0
    for line in relay.stdout:
        if line.startswith("listening smtp "):
            port = int(line.split()[2].rpartition(":")[2])
        if line.startswith("serving "):
            return relay, port, "asyncio"
    raise RuntimeError("mxsim serve did not start")


def bench_mxsim(messages: int, sessions: int, size: int, loop: str = "auto",
                kind: str = "live", workers: int = 1) -> dict:
    sink, sink_port = start_sink(messages)
    work = tempfile.mkdtemp(prefix="mxsim-bench-", dir="/var/tmp")
    relay, port, used = start_relay(kind, work, sink_port, sessions, loop, workers)
    try:
        pids = relay_pids(relay.pid)
        relay0, sink0, all0 = tree_cpu(pids), proc_cpu(sink.pid), machine_cpu()
        sys0 = tree_cpu(pids, "system")
        t0 = time.time()
        accepted_at = load(port, messages, sessions, size)
        n, _, last = wait_sink(sink, timeout=600)
        relay_cpu, sink_cpu = tree_cpu(pids) - relay0, proc_cpu(sink.pid) - sink0
        relay_sys = tree_cpu(pids, "system") - sys0
        all_cpu = machine_cpu() - all0
    finally:
        relay.kill()
        sink.kill()
        relay.wait()
        sink.wait()
        shutil.rmtree(work, ignore_errors=True)
    return {"accepted": messages / (accepted_at - t0), "delivered": n / (last - t0), "loop": used,
            "relay_ms": 1000 * relay_cpu / messages, "relay_sys_ms": 1000 * relay_sys / messages,
            "sink_ms": 1000 * sink_cpu / messages,
            "all_ms": 1000 * all_cpu / messages}


def bench_postfix(messages: int, sessions: int, size: int) -> dict | None:
    """The same load against a private Postfix instance (its own
    ``config_directory`` and queue in /var/tmp, like ours: the same disk)
    relaying everything (``relayhost``) to a sink; None without Postfix."""
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from helpers.postfix import PostfixInstance, PostfixMissing, free_port
    sink, sink_port = start_sink(messages)
    root = tempfile.mkdtemp(prefix="mxsim-bench-postfix-", dir="/var/tmp")
    try:
        try:
            instance = PostfixInstance(free_port(), root=Path(root), hostname="relay.bench.test",
                                       relayhost=f"[127.0.0.1]:{sink_port}")
        except PostfixMissing:
            return None
        with instance:
            sink0, all0 = proc_cpu(sink.pid), machine_cpu()
            t0 = time.time()
            accepted_at = load(instance.port, messages, sessions, size)
            n, _, last = wait_sink(sink, timeout=600)
            sink_cpu, all_cpu = proc_cpu(sink.pid) - sink0, machine_cpu() - all0
        # Postfix's CPU is spread over short-lived processes: the machine's
        # busy time less the sink's stands for it (smtp-source included).
        return {"accepted": messages / (accepted_at - t0), "delivered": n / (last - t0),
                "relay_ms": 1000 * (all_cpu - sink_cpu) / messages, "sink_ms": 1000 * sink_cpu / messages,
                "all_ms": 1000 * all_cpu / messages}
    finally:
        sink.kill()
        sink.wait()
        shutil.rmtree(root, ignore_errors=True)


def cpu_line(r: dict) -> str:
    """CPU milliseconds per message: the relay, the sink, the whole machine."""
    kernel = f" (kernel {r['relay_sys_ms']:.2f})" if "relay_sys_ms" in r else ""
    return (f"cpu ms/msg: relay {r['relay_ms']:.2f}{kernel} sink {r['sink_ms']:.2f} "
            f"machine {r['all_ms']:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--role", default="bench", choices=["bench", "sink"])
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--no-postfix", action="store_true")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--loop", default="auto", choices=["auto", "asyncio", "uvloop"],
                    help="the mxsim relay's event loop (auto: uvloop if installed)")
    ap.add_argument("--workers", type=int, default=1,
                    help="--relay live: relay processes sharing the port (one queue shard each)")
    ap.add_argument("--relay", default="live", choices=["live", "serve"],
                    help="live: python -m mta.queue.live; serve: mxsim serve (a backup MX, "
                         "the scenario roles' full policy chain, standard asyncio loop)")
    a = ap.parse_args()
    if a.role == "sink":
        run_sink(a.messages)
        return
    gen = "smtp-source" if shutil.which("smtp-source") else "aiosmtplib generator"
    print(f"load: {a.messages} messages of {a.size} B, {a.sessions} concurrent sessions ({gen}), "
          f"{a.rounds} round(s), relays alternating (the machine is shared: compare side by side)")
    postfix = not a.no_postfix
    ours, theirs = [], []
    for r in range(a.rounds):
        ours.append(bench_mxsim(a.messages, a.sessions, a.size, a.loop, a.relay, a.workers))
        print(f"round {r + 1} mxsim {a.relay:5s} ({ours[-1]['loop']:7s}, SQLite FULL, x{a.workers}): accepted {ours[-1]['accepted']:8.1f} msg/s"
              f"   delivered {ours[-1]['delivered']:8.1f} msg/s   {cpu_line(ours[-1])}", flush=True)
        if postfix:
            result = bench_postfix(a.messages, a.sessions, a.size)
            if result is None:
                postfix = False
                continue
            theirs.append(result)
            print(f"round {r + 1} postfix relay                      : accepted "
                  f"{theirs[-1]['accepted']:8.1f} msg/s   delivered {theirs[-1]['delivered']:8.1f} msg/s"
                  f"   {cpu_line(theirs[-1])}", flush=True)
    if not theirs:
        print("postfix: not installed (or --no-postfix), no comparison")
        return
    for key in ("accepted", "delivered"):
        print(f"median {key:9s}: mxsim {statistics.median(o[key] for o in ours):8.1f} msg/s, "
              f"postfix {statistics.median(t[key] for t in theirs):8.1f} msg/s")
    for key in ("accepted", "delivered"):
        ratios = [o[key] / t[key] for o, t in zip(ours, theirs)]
        print(f"ratio mxsim/postfix {key:9s}: median {statistics.median(ratios):.2f} "
              f"(per round, in order: {', '.join(f'{x:.2f}' for x in ratios)})")


if __name__ == "__main__":
    main()
