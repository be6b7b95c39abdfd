"""Hostile clients at scale against ``mxsim serve`` on loopback (run on demand).

    .venv/bin/python benchmarks/hostile.py streams [--streams 100000]
    .venv/bin/python benchmarks/hostile.py data [--bytes 1073741824] [--limit BYTES]
    .venv/bin/python benchmarks/hostile.py rcpts [--rcpts 10000] [--limit 9000]
    .venv/bin/python benchmarks/hostile.py idle [--connections 1000] [--idle 10]
    .venv/bin/python benchmarks/hostile.py drip [--idle 5] [--interval 1] [--lines 30]
    .venv/bin/python benchmarks/hostile.py all

Each prints its figures as ``key=value`` and then ``ok`` or the criteria
that failed (exit 1).  The drivers are the slow suite's
(``tests/helpers/hostile*.py``; ``tests/test_reliability_limits.py`` runs
them at smaller sizes): a real ``mxsim serve`` subprocess, a backup MX
relaying to an aiosmtpd sink in this process, measured from outside.

* ``streams``: the hypothesis state machine of hostile command streams;
  criteria: no crash, no withheld reply (a 421 timeout the model waited
  for), a clean transaction at the end, SIGTERM exits 0, every
  acknowledged message in the queue byte for byte and nothing else there;
* ``data``: a command line of ``--bytes / 4``, then a DATA stream of
  ``--bytes`` over the size limit (Postfix's 10,240,000 unless
  ``--limit``), then a message just under the limit in the same session;
  criteria: 500 5.5.2 for the line, 552 5.3.4 after the final dot, the
  server's RSS growth under 50 MB, the next message delivered intact;
* ``rcpts``: one transaction with ``--rcpts`` recipients, ``--limit``
  accepted (452 4.5.3 for the rest); prints the time of the reply to each
  tenth (a quadratic server slows down towards the end);
* ``idle``: ``--connections`` idle ones, timed out after ``--idle``
  seconds and not before, a fresh client served meanwhile, descriptors back
  to baseline;
* ``drip``: one byte per ``--interval`` in a command and in a DATA line
  (timed out: the deadline is per command and per line), whole lines per
  ``--interval`` in a body (accepted: no total budget), clean clients
  served meanwhile.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers.hostile import CLEAN  # noqa: E402
from helpers.hostile_connections import run_idle_connections, run_slow_drip  # noqa: E402
from helpers.hostile_limits import run_big_data, run_many_rcpts  # noqa: E402
from helpers.hostile_streams import run_streams  # noqa: E402

MB = 1 << 20
POSTFIX_SIZE_LIMIT = 10_240_000
#: Streams per requested example (hypothesis runs more examples than it is
#: asked for; measured: 98,360 streams for 3,334 requested), with a margin.
STREAMS_PER_EXAMPLE = 25


def streams(a, work: Path) -> tuple[dict, list[str]]:
    r = run_streams(work, examples=a.streams // STREAMS_PER_EXAMPLE + 1, progress=10_000)
    bad = [f"{k}={r[k]}" for k in ("missing", "wrong_bytes", "unacknowledged") if r[k]]
    if r["streams"] < a.streams:
        bad.append(f"only {r['streams']} streams")
    if r["withheld"]:
        bad.append(f"{r['withheld']} replies withheld until the idle timeout")
    if r["final"] != CLEAN or r["exit"] != 0 or r["integrity"] != "ok" or not r["alive_before_stop"]:
        bad.append("server unhealthy at the end")
    return r, bad


def data(a, work: Path) -> tuple[dict, list[str]]:
    limit = a.limit or POSTFIX_SIZE_LIMIT
    r = run_big_data(work, total=a.bytes, limit=a.limit, under=limit - 1000)
    bad = []
    if r["long_line"] != (500, "5.5.2 Error: command line too long"):
        bad.append(f"long_line={r['long_line']}")
    if r["over_reply"] != (552, "5.3.4 Message size exceeds fixed limit"):
        bad.append(f"over_reply={r['over_reply']}")
    if max(r["hwm_growth"], r["rss_peak_growth"]) >= 50 * MB:
        bad.append("RSS grew by 50 MB or more")
    if r["after"] != [250, 250, 250, 354, 250, 221] or not r["under_intact"]:
        bad.append("the session did not go on, or the message under the limit was not intact")
    return r, bad + _health(r)


def rcpts(a, work: Path) -> tuple[dict, list[str]]:
    r = run_many_rcpts(work, n=a.rcpts, limit=a.limit)
    bad = []
    if (r["answered"], r["accepted"], r["too_many"]) != (a.rcpts, a.limit, a.rcpts - a.limit):
        bad.append("not every RCPT answered as the limit says")
    if r["delivered_once"] != a.limit or r["delivered_twice_or_more"] or r["stray"]:
        bad.append("accepted recipients not delivered exactly once")
    return r, bad + _health(r)


def idle(a, work: Path) -> tuple[dict, list[str]]:
    r = run_idle_connections(work, n=a.connections, idle=a.idle)
    bad = []
    if (r["timed_out_421"], r["closed_after"], r["hung"], r["early"]) != (a.connections,) * 2 + (0, 0):
        bad.append("not every idle connection got 421 4.4.2 after the timeout")
    if r["fresh"] != CLEAN or not r["fresh_before_first_421"]:
        bad.append("the fresh client was not served while the others were held")
    if r["fds_after"] > r["fds_baseline"]:
        bad.append("descriptors not back to baseline")
    return r, bad + _health(r)


def drip(a, work: Path) -> tuple[dict, list[str]]:
    r = run_slow_drip(work, idle=a.idle, interval=a.interval, lines=a.lines, clean=1000)
    bad = []
    for name in ("command", "line"):
        if not r[name][2].startswith(b"421 4.4.2 "):
            bad.append(f"{name} drip not timed out")
    if r["body"][0][0] != 250 or not r["body_intact"] or r["line_delivered"]:
        bad.append("trickled body not accepted intact, or a half-dripped one kept")
    if r["junk"] != (502, 250, 221):
        bad.append("the wait did not restart at an unknown command")
    if r["clean_ok"] != r["clean_tried"]:
        bad.append("a clean client failed beside the drip")
    return r, bad + _health(r)


def _health(r: dict) -> list[str]:
    return [] if r["alive"] and not r["errors"] else [f"server unhealthy: {r['errors']}"]


RUNS = {"streams": streams, "data": data, "rcpts": rcpts, "idle": idle, "drip": drip}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    sub.add_parser("streams").add_argument("--streams", type=int, default=100_000)
    d = sub.add_parser("data")
    d.add_argument("--bytes", type=int, default=1 << 30)
    d.add_argument("--limit", type=int, default=None)
    r = sub.add_parser("rcpts")
    r.add_argument("--rcpts", type=int, default=10_000)
    r.add_argument("--limit", type=int, default=9_000)
    i = sub.add_parser("idle")
    i.add_argument("--connections", type=int, default=1000)
    i.add_argument("--idle", type=float, default=10.0)
    k = sub.add_parser("drip")
    k.add_argument("--idle", type=float, default=5.0)
    k.add_argument("--interval", type=float, default=1.0)
    k.add_argument("--lines", type=int, default=30)
    sub.add_parser("all")
    a = p.parse_args(argv)
    if getattr(a, "limit", 1) is not None and getattr(a, "limit", 1) < 1:
        p.error("--limit must be positive")
    if a.what == "all":
        return max(main([name]) for name in RUNS)
    work = Path(tempfile.mkdtemp(prefix=f"mxsim-hostile-{a.what}-"))
    try:
        result, bad = RUNS[a.what](a, work)
    except BaseException:
        print(f"{a.what}: kept {work} (the scenario, the server's state and its log)",
              file=sys.stderr)
        raise
    shutil.rmtree(work, ignore_errors=True)
    print(a.what + ": " + " ".join(f"{key}={value}" for key, value in result.items()))
    print("ok" if not bad else "FAILED: " + "; ".join(bad), flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
