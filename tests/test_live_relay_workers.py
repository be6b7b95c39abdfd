"""``python -m mta.queue.live --workers N``: N relay processes on one port,
one queue shard each.  A SIGKILL of the supervisor takes its workers down
(a crash of them all); a restart with as many workers delivers every
acknowledged message; fewer workers than shards on disk is refused."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest

from mta.queue.message import message_id
from helpers.queue import Recorder, gather_bounded, send_until_acknowledged, serve

N, KILL_AFTER = 240, 80


def start(db: str, sink_port: int, workers: int) -> tuple[subprocess.Popen, int, int, list[int]]:
    proc = subprocess.Popen([sys.executable, "-m", "mta.queue.live", "--db", db, "--port", "0",
                             "--next-hop", f"127.0.0.1:{sink_port}", "--workers", str(workers)],
                            stdout=subprocess.PIPE, text=True)
    parts = proc.stdout.readline().split()
    assert parts and parts[0] == "READY" and parts[4] == f"workers={workers}", parts
    with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
        children = [int(c) for c in f.read().split()]
    assert len(children) == workers
    return proc, int(parts[1]), int(parts[2].split("=")[1]), children


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


async def run(tmp_path) -> dict:
    sink = Recorder("sink", delay=0.05)     # slower than the client: mail piles up
    srv = await serve(sink, "sink.mxsim.test", port=0, host="127.0.0.1")
    sink_port = srv.sockets[0].getsockname()[1]
    db = str(tmp_path / "queue.db")
    loop = asyncio.get_running_loop()
    proc, port, _, workers = await loop.run_in_executor(None, start, db, sink_port, 2)
    relay = {"port": port}
    acked: list[str] = []
    killed = asyncio.Event()

    async def send(i: int) -> None:
        await send_until_acknowledged(relay, i, "w", acked, killed, KILL_AFTER)

    loader = asyncio.create_task(gather_bounded(N, 10, send))
    await killed.wait()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    deadline = time.monotonic() + 10
    while not all(gone(w) for w in workers):
        assert time.monotonic() < deadline, "workers outlived their supervisor"
        await asyncio.sleep(0.05)
    refused = await loop.run_in_executor(None, lambda: subprocess.run(
        [sys.executable, "-m", "mta.queue.live", "--db", db, "--next-hop",
         f"127.0.0.1:{sink_port}"], capture_output=True, text=True, timeout=60))
    proc, relay["port"], recovered, _ = await loop.run_in_executor(None, start, db, sink_port, 2)
    await loader
    deadline = time.monotonic() + 120
    while not set(acked) <= {message_id(d) for _, _, d in sink.messages}:
        assert time.monotonic() < deadline, "acknowledged mail was not delivered"
        await asyncio.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    await loop.run_in_executor(None, proc.wait)
    proc.stdout.close()
    srv.close()
    return dict(acked=acked, delivered=[message_id(d) for _, _, d in sink.messages],
                recovered=recovered, refused=refused, shards=os.path.exists(db + ".1"))


@pytest.mark.slow
def test_two_workers_lose_nothing_acknowledged_across_a_sigkill(tmp_path):
    r = asyncio.run(run(tmp_path))
    assert len(r["acked"]) == N
    assert set(r["acked"]) <= set(r["delivered"])
    assert r["shards"]
    assert r["refused"].returncode == 2
    assert "queue.db.1 holds a queue shard no worker would run" in r["refused"].stderr
