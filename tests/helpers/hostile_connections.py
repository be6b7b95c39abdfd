"""Connections that hold on: many idle ones, and slow-drip clients, against
``mxsim serve`` (:class:`helpers.hostile.Bed`).  No tests here; each
``run_*`` returns figures for ``tests/test_reliability_limits.py`` and
``benchmarks/hostile.py``."""
from __future__ import annotations

import hashlib
import socket
import threading
import time
from pathlib import Path

from helpers.hostile import CLEAN, SENDER, Bed, Dialogue, open_fds, settle_fds


# -- 4. many idle connections -------------------------------------------------------

def raise_nofile(needed: int) -> None:
    """Raise this process's soft RLIMIT_NOFILE (``mxsim serve`` inherits it)."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise RuntimeError(f"RLIMIT_NOFILE hard limit {hard} < {needed}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def run_idle_connections(work: Path, *, n: int, idle: float) -> dict:
    """Open ``n`` connections, read each banner, then say nothing.

    Figures: how many got ``421 4.4.2`` and then EOF, how many got anything
    earlier than ``idle`` seconds after they connected (the timer cannot
    start before the connect call), how long past ``idle`` the last 421
    came, whether a fresh client got its banner and completed a transaction
    while they were held, and the server's open descriptors before, while
    held and after."""
    import selectors
    raise_nofile(2 * n + 200)
    with Bed(work, idle=idle) as bed:
        assert bed.clean("<warm@hostile.test>") == CLEAN
        baseline = settle_fds(bed.pid, 0, timeout=0.5)
        conns: list[tuple[socket.socket, float]] = []
        early_bytes: list[bytes] = []
        banners = 0
        for _ in range(n):
            # One at a time, banner first: a burst would overflow the listen
            # backlog and wait out SYN retransmissions.
            t = time.monotonic()
            s = socket.create_connection(("127.0.0.1", bed.port), timeout=60)
            buf = b""
            while b"\r\n" not in buf and (chunk := s.recv(512)):
                buf += chunk
            banner, _, rest = buf.partition(b"\r\n")
            banners += banner.startswith(b"220 ")
            conns.append((s, t))
            early_bytes.append(rest)
        held_fds = open_fds(bed.pid)
        fresh = bed.clean("<fresh@hostile.test>")   # while all n are held
        fresh_at = time.monotonic()
        sel = selectors.DefaultSelector()
        for i, (s, _) in enumerate(conns):
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, i)
        got = list(early_bytes)
        eof_at: list[float | None] = [None] * n
        now = time.monotonic()
        first_byte_at: list[float | None] = [now if b else None for b in got]
        give_up = time.monotonic() + idle * 3 + 30
        while sel.get_map() and time.monotonic() < give_up:
            for key, _ in sel.select(timeout=1):
                i, s = key.data, key.fileobj
                try:
                    data = s.recv(4096)
                except (ConnectionResetError, BlockingIOError):
                    data = b""
                now = time.monotonic()
                if data and first_byte_at[i] is None:
                    first_byte_at[i] = now
                got[i] += data
                if not data:
                    eof_at[i] = now
                    sel.unregister(s)
        hung = len(sel.get_map())
        for s, _ in conns:
            s.close()
        after = settle_fds(bed.pid, baseline)
        delivered = bed.handler.wait_for("<fresh@hostile.test>", 1)
        alive, errors = bed.alive(), bed.component_errors()
    early = sum(1 for (_, t), at in zip(conns, first_byte_at)
                if at is not None and at - t < idle)
    ends = [at for at in first_byte_at if at is not None]
    return {"connections": n, "banners": banners,
            "timed_out_421": sum(1 for g in got if g.startswith(b"421 4.4.2 ")),
            "closed_after": sum(1 for e in eof_at if e is not None), "hung": hung,
            "early": early, "other_bytes": [g for g in got if g and not g.startswith(b"421 4.4.2 ")][:3],
            "fresh": fresh, "fresh_before_first_421": bool(ends) and fresh_at < min(ends),
            "fresh_delivered": delivered,
            "last_421_after_idle_s": round(max(ends) - (max(t for _, t in conns) + idle), 2)
            if ends else None,
            "fds_baseline": baseline, "fds_held": held_fds, "fds_after": after,
            "alive": alive, "errors": errors}


# -- 5. slow-drip clients -----------------------------------------------------------

def _in_data(port: int, name: str) -> Dialogue:
    """A dialogue past DATA's 354 for <name@example.net>, its header block sent."""
    d = Dialogue(port)
    for c in (None, b"EHLO drip.example", f"MAIL FROM:<{SENDER}>".encode(),
              f"RCPT TO:<{name}@example.net>".encode(), b"DATA"):
        d.reply() if c is None else d.command(c)
    d.send(f"Message-ID: <{name}@hostile.test>\r\n\r\n".encode())
    return d


def _drip(d: Dialogue, data: bytes, interval: float) -> tuple[int, float | None]:
    """Send ``data`` one byte every ``interval`` seconds until the server
    speaks or hangs up; (bytes sent, monotonic time it spoke or None)."""
    d.sock.settimeout(interval)
    for i, byte in enumerate(data):
        try:
            if d.sock.recv(1, socket.MSG_PEEK):
                return i, time.monotonic()
            return i, time.monotonic()          # EOF
        except (socket.timeout, BlockingIOError):
            pass
        try:
            d.send(bytes([byte]))
        except OSError:
            return i, time.monotonic()
    d.sock.settimeout(60)
    return len(data), None


def run_slow_drip(work: Path, *, idle: float, interval: float, lines: int,
                  clean: int) -> dict:
    """Four slow clients at once, and a stream of clean ones beside them.

    * ``command``: after EHLO, a MAIL command dripped one byte per
      ``interval`` (well inside ``idle``), taking far longer than ``idle``;
    * ``line``: inside DATA, one body line dripped the same way;
    * ``body``: a DATA body of ``lines`` whole lines, one per ``interval``:
      ``lines * interval`` is several idle timeouts, each line within one;
    * ``junk``: EHLO, an unknown command 0.75 ``idle`` later, a NOOP 0.75
      ``idle`` after that (the wait restarts at every line answered).

    Figures: what each slow client got and after how long (from its last
    complete command or line), whether the trickled body was delivered
    intact and the half-dripped ones never, and how many of ``clean``
    sequential transactions completed while the slow clients were still
    connected."""
    results: dict[str, object] = {}
    with Bed(work, idle=idle) as bed:
        def command() -> None:
            d = Dialogue(bed.port)
            d.reply()
            d.command(b"EHLO drip.example")
            t = time.monotonic()
            sent, at = _drip(d, f"MAIL FROM:<{SENDER}>\r\n".encode(), interval)
            results["command"] = (sent, round(at - t, 2) if at else None, _rest(d))

        def line() -> None:
            d = _in_data(bed.port, "line")
            t = time.monotonic()
            sent, at = _drip(d, b"a body line dripped byte by byte\r\n.\r\n", interval)
            results["line"] = (sent, round(at - t, 2) if at else None, _rest(d))

        def body() -> None:
            d = _in_data(bed.port, "body")
            t = time.monotonic()
            for i in range(lines):
                d.send(f"line {i}\r\n".encode())
                time.sleep(interval)
            d.send(b".\r\n")
            results["body"] = (d.reply(), round(time.monotonic() - t, 2), d.command(b"QUIT")[0])
            d.close()

        def junk() -> None:
            d = Dialogue(bed.port)
            d.reply()
            d.command(b"EHLO drip.example")
            time.sleep(idle * 0.75)
            bad = d.command(b"XYZZY plugh")[0]
            time.sleep(idle * 0.75)         # 1.5 idle after EHLO, 0.75 after XYZZY
            results["junk"] = (bad, d.command(b"NOOP")[0], d.command(b"QUIT")[0])
            d.close()

        slow = [threading.Thread(target=f, daemon=True) for f in (command, line, body, junk)]
        for t in slow:
            t.start()
        time.sleep(interval)          # the slow ones are connected
        clean_codes, waits = [], []
        for i in range(clean):
            if not any(t.is_alive() for t in slow):
                break
            t0 = time.monotonic()
            clean_codes.append(bed.clean(f"<clean{i}@hostile.test>") == CLEAN)
            waits.append(time.monotonic() - t0)
        still_slow = [t.is_alive() for t in slow]
        for t in slow:
            t.join(lines * interval + idle * 4 + 30)
        body_text = b"".join(f"line {i}\r\n".encode() for i in range(lines))
        got = bed.handler.wait_for("<body@hostile.test>", 1)
        with bed.handler.lock:
            digests = set(bed.handler.digests.get("<body@hostile.test>", ()))
        results.update(
            body_delivered=got, body_intact=digests == {hashlib.sha256(body_text).hexdigest()},
            line_delivered=bed.handler.delivered("<line@hostile.test>"),
            clean_ok=sum(clean_codes), clean_tried=len(clean_codes),
            clean_max_s=round(max(waits), 3) if waits else None,
            slow_alive_after_clean=still_slow, alive=bed.alive(),
            errors=bed.component_errors())
    return results


def _rest(d: Dialogue) -> bytes:
    """Everything the server sends until it closes."""
    d.sock.settimeout(30)
    data = b""
    try:
        while chunk := d.sock.recv(4096):
            data += chunk
    except OSError:
        pass
    d.close()
    return data
