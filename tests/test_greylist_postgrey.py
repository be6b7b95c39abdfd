"""Differential test against the real postgrey (slow suite).

postgrey takes the request time from ``policy_test_time`` (its
``smtpd_access_policy``, line 330), so a random timeline spanning weeks
runs in a second.  The same requests go to :func:`mta.policy.greylist.decide`
with a memory store; the actions (defer with its text, pass with or
without the X-Greylist delay) and postgrey's logged reasons must agree on
every request.  Timelines stay under postgrey's ``max_age`` (35 days):
postgrey expires entries in nightly maintenance driven by the wall clock,
which a test cannot reach.

Needs Debian's postgrey: ``apt-get install -y postgrey``.
"""
from __future__ import annotations

import grp
import os
import pwd
import random
import re
import shutil
import socket
import subprocess
import time

import pytest

from mta.policy.greylist import GreylistConfig, decide, query_for
from mta.policy.greylist_store import MemoryGreylistStore

pytestmark = pytest.mark.slow

DAY = 86400
TEXT = "Greylisted for %s seconds, see %r"
CLIENTS = ["192.0.2.7", "192.0.2.200", "198.51.100.3", "2001:db8:1:2::5",
           "2001:db8:1:2:ffff::9", "2001:db8:1:3::1"]
SENDERS = ["alice@sender.example", "list+bounce-123@lists.example", "list+bounce-456@lists.example",
           "prvs=1234567890=bob@batv.example", "", "news-2024@x.example"]
RCPTS = ["bob@example.net", "carol@example.net", "dave@example.org"]
STEPS = [0, 1, 59, 60, 61, 299, 300, 301, 3599, 3600, 3601, 7200, DAY, 2 * DAY, 2 * DAY + 1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgrey:
    """A postgrey daemon on a loopback port, from files in ``tmp_path``."""

    def __init__(self, tmp_path, options: list[str]) -> None:
        exe = shutil.which("postgrey") or shutil.which("postgrey", path="/usr/sbin")
        if exe is None:
            pytest.fail("postgrey is not installed: apt-get install -y postgrey")
        (tmp_path / "clients").write_text("")
        (tmp_path / "recipients").write_text("")
        self.port = free_port()
        self.log_path = tmp_path / "postgrey.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [exe, f"--inet=127.0.0.1:{self.port}", f"--dbdir={tmp_path}",
             f"--user={pwd.getpwuid(os.getuid()).pw_name}",
             f"--group={grp.getgrgid(os.getgid()).gr_name}",
             f"--whitelist-clients={tmp_path / 'clients'}",
             f"--whitelist-recipients={tmp_path / 'recipients'}",
             f"--greylist-text={TEXT}", *options],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.sock = self._connect()
        self.buf = b""

    def _connect(self) -> socket.socket:
        for _ in range(200):
            if self.proc.poll() is not None:
                pytest.fail(f"postgrey exited: {self.log_path.read_text()}")
            try:
                return socket.create_connection(("127.0.0.1", self.port), timeout=10)
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"postgrey did not listen: {self.log_path.read_text()}")

    def ask(self, t: int, ip: str, sender: str, rcpt: str) -> str:
        # etrn_domain present: Postfix >= 2.3, so postgrey adds "4.2.0".
        req = (f"request=smtpd_access_policy\nclient_address={ip}\nclient_name=unknown\n"
               f"sender={sender}\nrecipient={rcpt}\netrn_domain=\npolicy_test_time={t}\n\n")
        self.sock.sendall(req.encode())
        while b"\n\n" not in self.buf:
            chunk = self.sock.recv(4096)
            assert chunk, "postgrey closed the connection"
            self.buf += chunk
        reply, _, self.buf = self.buf.partition(b"\n\n")
        return reply.decode().removeprefix("action=")

    def reasons(self) -> list[tuple[str, str]]:
        out = []
        for line in self.log_path.read_text().splitlines():
            m = re.match(r"action=(\w+), reason=([^,]+)", line)
            if m:
                out.append((m.group(1), m.group(2)))
        return out

    def stop(self) -> None:
        self.sock.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            # Net::Server::Multiplex now and then sits on SIGTERM after a client
            # has gone; the decisions are already read, so end it for sure.
            self.proc.kill()
            self.proc.wait(timeout=20)
        self.log.close()


def ours(v) -> str:
    """Our verdict in postgrey's reply form (the X-Greylist date aside)."""
    d = v.decision
    if d.refused:
        return f"DEFER_IF_PERMIT {d.enhanced} {d.text.split(': Recipient address rejected: ', 1)[1]}"
    if d.headers:
        return "PREPEND X-Greylist: " + d.headers[0][1].split(" by ")[0]
    return "DUNNO"


def theirs(reply: str) -> str:
    return reply.split(" by postgrey")[0] if reply.startswith("PREPEND") else reply


def timeline(seed: int, n: int = 400) -> list[tuple[int, str, str, str]]:
    rng = random.Random(seed)
    t0 = t = 1_700_000_000
    out: list[tuple[int, str, str, str]] = []
    while len(out) < n and t - t0 < 30 * DAY:
        t += rng.choice(STEPS)
        if out and rng.random() < 0.5:       # a retry of the last triplet (maybe another host of its net)
            _, ip, sender, rcpt = out[-1]
            ip = rng.choice([ip, ip, rng.choice(CLIENTS)])
        else:
            ip, sender, rcpt = rng.choice(CLIENTS), rng.choice(SENDERS), rng.choice(RCPTS)
        out.append((t, ip, sender, rcpt))
    return out


@pytest.mark.parametrize("options,config", [
    ([], GreylistConfig(greylist_text=TEXT, whitelist_recipients=())),
    (["--lookup-by-host", "--delay=60", "--retry-window=6h", "--auto-whitelist-clients=2"],
     GreylistConfig(greylist_text=TEXT, whitelist_recipients=(), lookup_by_host=True, delay=60,
                    retry_window=6 * 3600, auto_whitelist_clients=2)),
], ids=["defaults", "by-host"])
def test_decisions_match_real_postgrey(tmp_path, options, config):
    daemon = Postgrey(tmp_path, options)
    try:
        store = MemoryGreylistStore()
        mine: list[tuple[str, str]] = []
        kinds = set()
        for seed in (1, 2, 3):
            for t, ip, sender, rcpt in timeline(seed):
                rcpt = f"s{seed}-{rcpt}"          # each seed its own triplets
                q = query_for(config, ip, sender, rcpt, t)
                v = decide(config, q, store.triplet(q.key), store.client(q.client))
                store.apply(v.update)
                expected = theirs(daemon.ask(t, ip, sender, rcpt))
                assert ours(v) == expected, (seed, t, ip, sender, rcpt, v.detail)
                mine.append((v.action, v.reason))
                kinds.add(v.reason)
        reasons = [(a, r.split(" (")[0]) for a, r in daemon.reasons()]
        assert reasons == mine
        # the timelines exercised every branch that matters
        assert {"new", "early-retry", "triplet found", "client AWL"} <= kinds
    finally:
        daemon.stop()
