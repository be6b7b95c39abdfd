"""Limits under hostile load: a huge DATA stream and thousands of RCPTs in
one transaction, against ``mxsim serve`` (:class:`helpers.hostile.Bed`).
No tests here; each ``run_*`` returns figures for
``tests/test_reliability_limits.py`` and ``benchmarks/hostile.py``."""
from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

from helpers.hostile import CLEAN, SENDER, Bed, Dialogue, proc_status


# -- 2. a huge DATA stream ------------------------------------------------------

def _chunk(size: int = 1 << 20) -> bytes:
    """``size`` bytes of body: ordinary lines, dot-stuffed lines and one line
    of 64 KiB without a line break (the reader's long-line path)."""
    line = b"x" * 1022 + b"\r\n"
    stuffed = b".." + b"y" * 1020 + b"\r\n"
    long = b"z" * ((64 << 10) - 2) + b"\r\n"
    body = long + (line * 3 + stuffed) * ((size - len(long)) // 4096)
    return body + b"w" * (size - len(body) - 2) + b"\r\n"


class RssSampler(threading.Thread):
    """Samples the server's VmRSS every few milliseconds while it runs."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self._done = pid, 0, threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.005):
            self.peak = max(self.peak, proc_status(self.pid)["VmRSS"])

    def stop(self) -> int:
        self._done.set()
        self.join()
        return self.peak


def run_big_data(work: Path, *, total: int, limit: int | None, under: int) -> dict:
    """Send a command line of ``total / 4`` bytes, then ``total`` bytes of
    DATA over a ``limit`` size limit, then a message of ``under`` octets
    (just under it) in the same session.

    Figures: the replies to the long line, to the oversized message and to
    the next one; the server's RSS growth over both (VmHWM after minus
    VmHWM before, and the peak of sampled VmRSS over the baseline); whether
    the under-limit message reached the sink byte for byte."""
    with Bed(work, size_limit=limit) as bed:
        assert bed.clean("<warm@hostile.test>") == CLEAN
        before = proc_status(bed.pid)
        d = Dialogue(bed.port, timeout=600)
        d.reply()
        d.command(b"EHLO client.example")
        sampler = RssSampler(bed.pid)
        sampler.start()
        # A command line of a quarter of the stream, then the stream in DATA.
        d.send(b"NOOP ")
        filler = b"n" * (1 << 20)
        for _ in range(total // 4 // len(filler)):
            d.send(filler)
        long_line = d.command(b"")
        mail = d.command(f"MAIL FROM:<{SENDER}>".encode())[0]
        d.command(b"RCPT TO:<big@example.net>")
        start = d.command(b"DATA")[0]
        chunk, sent, t0 = _chunk(), 0, time.monotonic()
        d.send(b"Message-ID: <huge@hostile.test>\r\n\r\n")
        while sent < total:
            d.send(chunk)
            sent += len(chunk)
        d.send(b".\r\n")
        over = d.reply()
        seconds = time.monotonic() - t0
        peak = sampler.stop()
        after = proc_status(bed.pid)
        # The session goes on: a message just under the limit, stored intact.
        mid = "<under@hostile.test>"
        head = f"Message-ID: {mid}\r\n\r\n".encode()
        stuffed = b".." + b"u" * 996 + b"\r\n"          # 999 octets once unstuffed
        lines = (under - len(head) - 999) // 1000
        body = stuffed + (b"v" * 998 + b"\r\n") * lines
        unstuffed = body[1:]
        codes = [d.command(b"RSET")[0], d.command(f"MAIL FROM:<{SENDER}>".encode())[0],
                 d.command(b"RCPT TO:<under@example.net>")[0], d.command(b"DATA")[0]]
        d.send(head + body + b".\r\n")
        codes += [d.reply()[0], d.command(b"QUIT")[0]]
        d.close()
        under_hwm = proc_status(bed.pid)["VmHWM"]
        got = bed.handler.wait_for(mid, 1)
        with bed.handler.lock:
            digests = set(bed.handler.digests.get(mid, ()))
        huge_delivered = bed.handler.delivered("<huge@hostile.test>")
        alive = bed.alive()
        errors = bed.component_errors()
    return {"sent": sent, "long_line": long_line, "mail": mail, "data": start, "over_reply": over,
            "seconds": round(seconds, 1), "mb_per_s": round(sent / seconds / 1e6, 1),
            "hwm_growth": after["VmHWM"] - before["VmHWM"],
            "rss_peak_growth": max(0, peak - before["VmRSS"]),
            "baseline_rss": before["VmRSS"], "after": codes,
            "under_size": len(head) + len(unstuffed), "under_delivered": got,
            "under_hwm_growth": under_hwm - after["VmHWM"],
            "under_intact": digests == {hashlib.sha256(unstuffed).hexdigest()},
            "huge_delivered": huge_delivered, "alive": alive, "errors": errors}


# -- 3. thousands of recipients in one transaction --------------------------------

def run_many_rcpts(work: Path, *, n: int, limit: int) -> dict:
    """One session pipelines EHLO, MAIL, ``n`` RCPTs (distinct recipients)
    and DATA, reading replies on another thread as they come (a client that
    wrote everything before reading would deadlock against any server that
    waits for its replies to drain).

    Figures: how many RCPTs were answered, 250 and 452 4.5.3 counts, the
    index of the first 452, the DATA reply, the event-log bytes per RCPT,
    the time of the reply to each tenth of the RCPTs (the benchmark prints
    them: a quadratic server would slow down towards the end), and how
    many accepted recipients the sink got exactly once."""
    with Bed(work, recipient_limit=limit) as bed:
        log = work / "state" / "events.jsonl"
        log_before = log.stat().st_size
        d = Dialogue(bed.port, timeout=300)
        d.reply()
        d.command(b"EHLO client.example")
        mid = "<many@hostile.test>"
        rcpts = [f"r{i}@example.net" for i in range(n)]
        replies: list[tuple[int, str]] = []
        times: list[float] = []

        def read() -> None:
            for _ in range(n + 2):      # MAIL, the RCPTs, DATA
                replies.append(d.reply())
                times.append(time.monotonic())

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        t0 = time.monotonic()
        d.send(f"MAIL FROM:<{SENDER}>\r\n".encode()
               + b"".join(f"RCPT TO:<{r}>\r\n".encode() for r in rcpts) + b"DATA\r\n")
        reader.join(300)
        rcpt_replies = replies[1:n + 1]
        codes = [c for c, _ in rcpt_replies]
        data = d.command(f"Message-ID: {mid}\r\nSubject: many\r\n\r\nhello\r\n.".encode())
        quit_ = d.command(b"QUIT")[0]
        d.close()
        log_bytes = log.stat().st_size - log_before
        accepted = [r for r, c in zip(rcpts, codes) if c == 250]
        got = bed.handler.wait_for(mid, len(accepted))
        errors, alive = bed.component_errors(), bed.alive()
    tenths = [round(times[1 + (n * k) // 10 - 1] - t0, 3) for k in range(1, 11)] \
        if len(times) == n + 2 else []
    return {"rcpts": n, "answered": len(rcpt_replies), "accepted": codes.count(250),
            "too_many": sum(1 for c, t in rcpt_replies if c == 452 and t.startswith("4.5.3")),
            "first_452": codes.index(452) if 452 in codes else None,
            "data": replies[-1][0] if len(replies) == n + 2 else None, "queued": data[0],
            "quit": quit_, "log_bytes_per_rcpt": round(log_bytes / n),
            "tenths_s": tenths,
            "delivered_once": sum(1 for r in accepted if got.get(r) == 1),
            "delivered_twice_or_more": sum(1 for r in accepted if got.get(r, 0) > 1),
            "stray": sorted(set(got) - set(accepted))[:5], "alive": alive, "errors": errors}
