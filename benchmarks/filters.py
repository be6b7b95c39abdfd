"""Service times of the content filters: real clamd and spamd, and the built-ins.

Starts clamd and spamd itself on loopback ports (configs in a temporary
directory, as the slow tests do: tests/helpers/filter_daemons.py), warms
each up, then scans every case ``--runs`` times one after the other and
prints one line per (scanner, case):

    <scanner> <case> bytes=<n> verdict=<v> median_ms=<m> p90_ms=<p> cpu_ms=<c>

For clamd and spamd ``median_ms``/``p90_ms`` are the wall time of one
request through the adapter (what a stage waits for; the daemon's CPU is
spent in another process), for the built-in scanners ``cpu_ms`` is this
process's CPU time per scan (the figure a simulated stage charges).
``clamd-raw`` streams the message in one INSTREAM chunk over a plain
socket, to separate clamd's own time from aioclamd's 1 KiB chunking.
These figures become the stages' default virtual service times.

    python benchmarks/filters.py [--runs 30]
"""
from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from helpers import filter_daemons as daemons  # noqa: E402
from helpers.filter_corpus import (GTUBE_MAIL, RULE_SPAM, TEXT, attachment,  # noqa: E402
                                   attachment_100k, clean_2k, eicar_zip, multipart, zip_of)

from mta.filters.clamav import ClamdScanner  # noqa: E402
from mta.filters.spam import BuiltinScorer  # noqa: E402
from mta.filters.spamd import SpamdScorer  # noqa: E402
from mta.filters.virus import BuiltinScanner  # noqa: E402

CASES = {"clean-2k": clean_2k(), "attachment-100k": attachment_100k(), "eicar-zip": eicar_zip()}
SPAM_CASES = {**CASES, "rule-spam": RULE_SPAM, "gtube": GTUBE_MAIL}
# Two 12 MiB members of zeros (48 kB on the wire): past the test clamd's
# MaxScanSize (20 MiB) and the built-in ratio limit; virus scanners only.
BOMB = {"zip-bomb-24M": multipart([TEXT, attachment("application/zip", zip_of(
    [("a.bin", b"\0" * (12 << 20)), ("b.bin", b"\0" * (12 << 20))]))])}


def line(scanner: str, case: str, size: int, verdict: str, walls: list[float],
         cpus: list[float]) -> str:
    walls = sorted(walls)
    p90 = walls[min(len(walls) - 1, int(0.9 * len(walls)))]
    return (f"{scanner} {case} bytes={size} verdict={verdict} "
            f"median_ms={statistics.median(walls) * 1e3:.2f} p90_ms={p90 * 1e3:.2f} "
            f"cpu_ms={statistics.median(cpus) * 1e3:.2f}")


def clamd_raw(port: int, message: bytes) -> str:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"nINSTREAM\n" + struct.pack("!L", len(message)) + message +
                  struct.pack("!L", 0))
        out = b""
        while chunk := s.recv(4096):
            out += chunk
    return out.decode().strip()


async def measure_async(call, message: bytes, runs: int) -> tuple[str, list[float], list[float]]:
    verdict = ""
    walls, cpus = [], []
    for _ in range(runs):
        w0, c0 = time.perf_counter(), time.process_time()
        verdict = await call(message)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return verdict, walls, cpus


def measure_sync(call, message: bytes, runs: int) -> tuple[str, list[float], list[float]]:
    verdict = ""
    walls, cpus = [], []
    for _ in range(runs):
        w0, c0 = time.perf_counter(), time.process_time()
        verdict = call(message)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return verdict, walls, cpus


def virus_label(v) -> str:
    detail = ",".join(v.signatures) or v.reason.split(":")[0].replace(" ", "_")
    return v.status.value + (f"({detail})" if detail else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    runs = args.runs
    builtin_scanner, builtin_scorer = BuiltinScanner(), BuiltinScorer()
    for case, message in {**CASES, **BOMB}.items():
        v, w, c = measure_sync(builtin_scanner.scan_sync, message, runs)
        print(line("builtin-virus", case, len(message), virus_label(v), w, c), flush=True)
    for case, message in SPAM_CASES.items():
        s, w, c = measure_sync(builtin_scorer.score_sync, message, runs)
        print(line("builtin-spam", case, len(message), f"{s.score:g}", w, c), flush=True)
    with tempfile.TemporaryDirectory(prefix="mxsim-filters-") as tmp:
        with daemons.clamd(Path(tmp) / "clamd") as clamd:
            scanner = ClamdScanner("127.0.0.1", clamd.port, timeout=60)
            for case, message in {**CASES, **BOMB}.items():
                asyncio.run(scanner.scan(message))            # warm-up
                v, w, c = asyncio.run(measure_async(scanner.scan, message, runs))
                print(line("clamd", case, len(message), virus_label(v), w, c), flush=True)
                r, w, c = measure_sync(lambda m: clamd_raw(clamd.port, m), message, runs)
                print(line("clamd-raw", case, len(message), r.split(": ", 1)[-1].replace(" ", "_"),
                           w, c), flush=True)
        with daemons.spamd(Path(tmp) / "spamd") as spamd:
            scorer = SpamdScorer("127.0.0.1", spamd.port, timeout=120)
            for case, message in SPAM_CASES.items():
                asyncio.run(scorer.score(message))            # warm-up
                s, w, c = asyncio.run(measure_async(scorer.score, message, runs))
                label = f"{s.score:g}" if s.ok else "error"
                print(line("spamd", case, len(message), label, w, c), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
