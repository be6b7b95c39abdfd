"""The ``postfix`` retry preset against a real Postfix 3.7 (slow suite).

A private Postfix on loopback (:mod:`tests.helpers.postfix`) relays by a
transport map to next hops of this test's own: a port that refuses
connections, or a server that answers ``451`` to RCPT, until a given time
from which it accepts.  Timers are shortened to seconds.  For each message
(the original, and the DSN Postfix sends when it gives up) the test records

* every attempt: the time the next hop saw it (server side) or, for a
  refused connection, the ``connect to ... refused`` line in the maillog
  (whole seconds);
* every next-try stamp: the deferred queue file's mtime, which qmgr sets
  exactly (``qmgr_active_defer``: ``event_time() + delay``);
* its end: delivered, or ``status=expired, returned to sender``.

Then the ``postfix`` preset with the same settings, the same arrival time
and the qmgr's scan grid (deferred scans every ``queue_run_delay`` whole
seconds, located with a probe message first), replays the message through ``next_attempt`` and
``next_try``: same number of attempts, each within 1 s, the same stamps,
the same end.  All cases run at once (one instance each) to keep the file
short in wall time.

Not modelled, and kept out of these cases on purpose: a destination that
refuses connections is "dead" in qmgr for ``minimal_backoff_time`` after
the failure (``qmgr_queue_throttle``); a message scanned in that window is
deferred again without an attempt.  The submission time is placed so the
first retry's scan comes after that window.
"""
from __future__ import annotations

import asyncio
import math
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from mta.retry.presets import PostfixSchedule, preset
from helpers.postfix import PostfixInstance, free_port

pytestmark = pytest.mark.slow

SENDER = "alice@sender.example"
RCPT = "bob@dest.example"
BODY = b"From: alice@sender.example\r\nTo: bob@dest.example\r\nSubject: retry\r\n\r\nhello\r\n"
NEVER = math.inf


# -- next hops ---------------------------------------------------------------------

class NextHop:
    """A loopback next hop in its own thread: refuses connections (mode
    ``refuse``: nothing listens) or answers RCPT with 451 (mode ``4xx``)
    until ``accept_at`` (wall time), then accepts mail.  ``seen`` lists
    ``(time, mail_from)`` of every transaction the server side saw."""

    def __init__(self, mode: str, accept_at: float = NEVER) -> None:
        self.mode, self.accept_at, self.port = mode, accept_at, free_port()
        self.seen: list[tuple[float, str]] = []
        self.delivered: list[float] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None

    def start(self) -> None:
        self._thread.start()
        if self.mode == "4xx":
            self._call(self._listen())
        elif self.accept_at < NEVER:
            self._loop.call_soon_threadsafe(self._listen_at)

    def stop(self) -> None:
        if self._server is not None:
            self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def _listen_at(self) -> None:
        self._loop.call_later(max(self.accept_at - time.time(), 0),
                              lambda: self._loop.create_task(self._listen()))

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", self.port)

    async def _close(self) -> None:
        self._server.close()
        await self._server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        mail_from = ""
        writer.write(b"220 hop.mxsim.test ESMTP\r\n")
        try:
            while line := await reader.readline():
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    writer.write(b"250 hop.mxsim.test\r\n")
                elif verb == b"MAIL":
                    mail_from = line.decode().split(":", 1)[1].strip().split()[0].strip("<>")
                    writer.write(b"250 2.1.0 ok\r\n")
                elif verb == b"RCPT":
                    now = time.time()
                    self.seen.append((now, mail_from))
                    writer.write(b"250 2.1.5 ok\r\n" if now >= self.accept_at
                                 else b"451 4.3.0 try again later\r\n")
                elif verb == b"DATA":
                    writer.write(b"354 go ahead\r\n")
                    while (await reader.readline()) not in (b".\r\n", b""):
                        pass
                    self.delivered.append(time.time())
                    writer.write(b"250 2.0.0 queued\r\n")
                elif verb == b"QUIT":
                    writer.write(b"221 2.0.0 bye\r\n")
                    break
                else:
                    writer.write(b"250 2.0.0 ok\r\n")
                await writer.drain()
        finally:
            writer.close()


# -- watching Postfix ----------------------------------------------------------------

def scan_grid(pf: PostfixInstance) -> int:
    """A second at which qmgr scans the deferred queue (scans come every
    queue_run_delay from qmgr's start, in whole seconds: ``event_request_timer``).

    Found with a probe: a message from ``<>`` to a port nobody listens on
    (a destination of its own), whose first retry is picked up by a scan;
    qmgr logs "queue active" in that second.  The probe is then deleted."""
    pf.send("", ["probe@probe.example"], BODY)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        active = [(t, qid) for t, daemon, qid, rest in maillog_events(pf.maillog())
                  if daemon == "qmgr" and rest.startswith("from=<>") and "queue active" in rest]
        if len(active) >= 2:
            pf.delete(active[1][1])
            return int(active[1][0])
        time.sleep(0.2)
    raise AssertionError(f"the probe was not retried:\n{pf.maillog()}")


@dataclass
class Message:
    """What was observed about one queued message."""

    queue_id: str
    sender: str
    arrival: int | None = None                           # postqueue's arrival_time
    stamps: list[int] = field(default_factory=list)      # deferred queue file mtimes
    attempts: list[float] = field(default_factory=list)  # next-hop side (or maillog)
    end: str = "queued"                                  # delivered / expired / queued


class Watcher:
    """Polls an instance's deferred queue (every 50 ms) for new mtimes, and
    its queue listing (every 0.5 s) for arrival times, in a thread."""

    def __init__(self, pf: PostfixInstance) -> None:
        self.pf = pf
        self.stamps: dict[str, list[int]] = {}
        self.arrivals: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Watcher":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        last_listing = 0.0
        while not self._stop.is_set():
            for dirpath, _, files in os.walk(self.pf.queue_directory / "deferred"):
                for qid in files:
                    try:
                        mtime = int(os.stat(os.path.join(dirpath, qid)).st_mtime)
                    except FileNotFoundError:
                        continue
                    seen = self.stamps.setdefault(qid, [])
                    if not seen or seen[-1] != mtime:
                        seen.append(mtime)
            if time.monotonic() - last_listing > 0.5:
                last_listing = time.monotonic()
                for entry in self.pf.queue():
                    self.arrivals.setdefault(entry["queue_id"], entry["arrival_time"])
            self._stop.wait(0.05)


_LOG = re.compile(r"^(\w{3} +\d+ [\d:]{8}) \S+ postfix/(\w+)\[\d+\]: ([0-9A-F]{6,}): (.*)$")


def maillog_events(text: str) -> list[tuple[float, str, str, str]]:
    """(time, daemon, queue_id, rest) for every per-message maillog line."""
    year = datetime.now().year
    out = []
    for line in text.splitlines():
        m = _LOG.match(line)
        if m:
            t = datetime.strptime(f"{year} {m[1]}", "%Y %b %d %H:%M:%S").timestamp()
            out.append((t, m[2], m[3], m[4]))
    return out


def messages(pf: PostfixInstance, watcher: Watcher, hops: dict[str, NextHop]) -> dict[str, Message]:
    """The observed messages by sender ("" for the DSN)."""
    by_id: dict[str, Message] = {}
    events = maillog_events(pf.maillog())
    probes = {qid for _, _, qid, rest in events if "to=<probe@probe.example>" in rest}
    for t, daemon, qid, rest in events:
        if qid in probes:
            continue
        if daemon == "qmgr" and rest.startswith("from=<") and qid not in by_id:
            by_id[qid] = Message(qid, rest[6:rest.index(">")])
        msg = by_id.get(qid)
        if msg is None:
            continue
        if daemon == "smtp" and "Connection refused" in rest:
            msg.attempts.append(t)
        elif "status=sent" in rest:
            msg.end = "delivered"
        elif "status=expired" in rest:
            msg.end = "expired"
    for msg in by_id.values():
        msg.arrival = watcher.arrivals.get(msg.queue_id)
        msg.stamps = watcher.stamps.get(msg.queue_id, [])
        hop = hops["dest" if msg.sender else "sender"]
        if hop.mode == "4xx" or hop.delivered:
            # Server-side times: every transaction the hop saw for this message
            # (refusals before the hop listened come from the maillog above).
            msg.attempts += [t for t, frm in hop.seen if frm == msg.sender]
            msg.attempts.sort()
    return {m.sender: m for m in by_id.values()}


# -- the cases -------------------------------------------------------------------------

#: Shortened timers (seconds).  queue_run_delay 3 and minimal_backoff_time 2
#: keep every retry's scan after the dead-destination window (see the top).
#: The lifetimes land on a deferral exactly (the original's age is 24 at
#: its sixth, the DSN's 12 at its fourth): qmgr's comparison is ``>=``.
TIMERS = {"queue_run_delay": 3, "minimal_backoff_time": 2, "maximal_backoff_time": 7,
          "maximal_queue_lifetime": 24, "bounce_queue_lifetime": 12}


@dataclass(frozen=True)
class Case:
    name: str
    dest: str                  # next hop of the recipient: refuse / 4xx
    accept_after: float        # seconds after submission it accepts (inf: never); whole
    #                            seconds, so it falls half a second off the scan grid
    bounce_hop: str = "refuse"  # next hop of the sender's domain, where the DSN goes


CASES = [
    Case("refused-gives-up", "refuse", NEVER),
    Case("4xx-gives-up", "4xx", NEVER, bounce_hop="4xx"),
    Case("refused-then-accepts", "refuse", 14.0),
    Case("4xx-then-accepts", "4xx", 17.0),
]


@dataclass
class Observed:
    case: Case
    phase: int                  # a deferred-queue scan's second (the grid's origin)
    submitted: float
    messages: dict[str, Message]
    maillog: str


def run_case(case: Case) -> Observed:
    """Run ``case`` on a fresh instance until its messages have left the queue."""
    hops = {"dest": NextHop(case.dest), "sender": NextHop(case.bounce_hop)}
    routes = {"dest.example": f"smtp:[127.0.0.1]:{hops['dest'].port}",
              "sender.example": f"smtp:[127.0.0.1]:{hops['sender'].port}",
              "probe.example": f"smtp:[127.0.0.1]:{free_port()}"}
    settings = {k: f"{v}s" for k, v in TIMERS.items()}
    settings.update(smtp_connection_cache_on_demand="no", delay_warning_time="0")
    with PostfixInstance(free_port(), transport_maps=routes, settings=settings) as pf:
        phase = scan_grid(pf)
        # Submit half a second into a scan second, so the first retry's scan
        # (two grid steps on) falls after the dead-destination window.
        delay = TIMERS["queue_run_delay"]
        now = time.time()
        k = math.ceil((now - phase) / delay) + 1
        time.sleep(phase + k * delay + 0.5 - now)
        submitted = time.time()
        hops["dest"].accept_at = submitted + case.accept_after
        for hop in hops.values():
            hop.start()
        try:
            with Watcher(pf) as watcher:
                pf.send(SENDER, [RCPT], BODY)
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    time.sleep(0.5)
                    if "status=" in pf.maillog() and not pf.queue() and watcher.stamps:
                        break
                time.sleep(0.3)
            return Observed(case, phase, submitted, messages(pf, watcher, hops), pf.maillog())
        finally:
            for hop in hops.values():
                hop.stop()


# -- the model's prediction --------------------------------------------------------------

@dataclass
class Prediction:
    attempts: list[float]
    stamps: list[float]
    end: str


def predict(schedule: PostfixSchedule, queued_at: float, first_attempt: float,
            accept_at: float) -> Prediction:
    """Replay one message through the preset: tried at ``first_attempt``, each
    attempt failing at once until the next hop accepts (at ``accept_at``)."""
    attempts, stamps, now = [first_attempt], [], first_attempt
    while now < accept_at:
        nxt = schedule.next_attempt(queued_at, first_attempt, now, len(attempts))
        if nxt is None:
            return Prediction(attempts, stamps, "expired")
        stamps.append(schedule.next_try(queued_at, now))
        attempts.append(nxt)
        now = nxt
    return Prediction(attempts, stamps, "delivered")


def compare(obs: Observed, msg: Message, accept_at: float) -> list[str]:
    """Where the preset disagrees with what Postfix did (empty: agreement)."""
    schedule = preset("postfix", queue_phase=obs.phase, **TIMERS)
    if not msg.sender:
        schedule = schedule.for_bounce()
    assert msg.arrival is not None and msg.attempts, f"{msg.queue_id}: nothing observed"
    # Same clock origin: Postfix's arrival second and its first attempt.
    want = predict(schedule, msg.arrival, msg.attempts[0], accept_at)
    problems = []
    if len(want.attempts) != len(msg.attempts):
        problems.append(f"{len(msg.attempts)} attempts, the preset predicts {len(want.attempts)}")
    worst = max((abs(a - b) for a, b in zip(want.attempts, msg.attempts)), default=0.0)
    if worst > 1.0:
        problems.append(f"an attempt {worst:.2f} s from the prediction")
    if [int(x) for x in want.stamps] != msg.stamps:
        problems.append(f"stamps {[x - obs.phase for x in msg.stamps]}, "
                        f"predicted {[x - obs.phase for x in want.stamps]}")
    if want.end != msg.end:
        problems.append(f"{msg.end}, the preset predicts {want.end}")
    rel = [round(a - obs.phase, 2) for a in msg.attempts]
    if problems:  # what Postfix logged about it, times past the grid origin
        problems.append("\n".join(f"  {t - obs.phase:5.0f} {daemon}: {rest[:120]}"
                                   for t, daemon, qid, rest in maillog_events(obs.maillog)
                                   if qid == msg.queue_id))
    print(f"{obs.case.name} {msg.sender or '<>'}: attempts {len(msg.attempts)} observed, "
          f"{len(want.attempts)} predicted; worst error {worst:.2f} s; stamps "
          f"{'equal' if not any('stamps' in p for p in problems) else 'differ'}; "
          f"end {msg.end} / {want.end}")
    return [f"{obs.case.name} {msg.sender or '<>'}: {p} (attempts at {rel} past the grid origin)"
            for p in problems]


@pytest.fixture(scope="module")
def observed() -> list[Observed]:
    """Every case, run at once (one Postfix instance each)."""
    with ThreadPoolExecutor(len(CASES)) as pool:
        return list(pool.map(run_case, CASES))


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c.name for c in CASES])
def test_preset_predicts_real_postfix(observed, index):
    obs = observed[index]
    case = obs.case
    accept_at = obs.submitted + case.accept_after
    original = obs.messages[SENDER]
    problems = compare(obs, original, accept_at)
    if case.accept_after == NEVER:
        assert original.end == "expired", original
        problems += compare(obs, obs.messages[""], NEVER)   # the DSN, with its own lifetime
    else:
        assert original.end == "delivered", original
        assert "" not in obs.messages                        # no DSN for delivered mail
    assert not problems, "\n".join(problems)
