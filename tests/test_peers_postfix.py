"""Postfix on both sides of ``mxsim serve`` (slow; Debian package ``postfix``).

A client submits to Postfix (P1), which relays ``customer.example`` into a
queueing server run by ``mxsim serve``; the queueing server holds the mail
until ETRN, then delivers it to a second Postfix (P2), which keeps it in
its queue (``defer_transports = smtp``: a next hop it never tries) where ``postqueue -j`` and
``postcat`` read it back.  Every message is checked by its content at
both ends: mxsim's log says it accepted each one from P1, and P2 holds
each body byte for byte.  Then ``mxsim probe`` judges P1 configured open
(it relays for loopback) and closed.
"""
from __future__ import annotations

import json
import smtplib
import subprocess
import time

import pytest

from helpers.postfix import PostfixInstance, free_port
from helpers.serve import MXSIM, start_serve

pytestmark = pytest.mark.slow

QUEUE = "queue.isp.example"


def scenario(tmp_path, p2_port: int):
    path = tmp_path / "queue.yaml"
    path.write_text(f"""\
name: postfix-peers
seed: 1
duration: 1h
hosts:
  - {{name: {QUEUE}, address: 192.0.2.30}}
roles:
  - role: queueing-server
    host: {QUEUE}
    relay_domains: customer.example
    etrn: {{allowed: 127.0.0.0/8}}
    routes: {{customer.example: "[127.0.0.1]:{p2_port}"}}
""")
    return path


def body(i: int) -> bytes:
    return (f"From: ann@sender.example\r\nTo: u{i}@customer.example\r\n"
            f"Message-ID: <pf{i}@sender.example>\r\nSubject: round trip {i}\r\n\r\n"
            f"line one of {i}\r\nline two of {i}\r\n").encode()


def wait_for(cond, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not reached"
        time.sleep(0.2)


def postcat_body(pf: PostfixInstance, queue_id: str) -> str:
    done = subprocess.run(["/usr/sbin/postcat", "-c", str(pf.config_directory), "-bq", queue_id],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_postfix_relays_into_mxsim_and_receives_from_it(tmp_path):
    n = 4
    p2 = PostfixInstance(free_port(), hostname="p2.mxsim.test",
                         transport_maps={"customer.example": "smtp:[127.0.0.1]:9"},
                         settings={"relay_domains": "customer.example",
                                   "defer_transports": "smtp"})
    with p2:
        state = tmp_path / "state"
        served = start_serve(scenario(tmp_path, p2.port), QUEUE, state)
        try:
            p1 = PostfixInstance(free_port(), hostname="p1.mxsim.test",
                                 transport_maps={"customer.example":
                                                 f"smtp:[127.0.0.1]:{served.port()}"})
            with p1:
                for i in range(n):
                    p1.send("ann@sender.example", [f"u{i}@customer.example"], body(i))
                log = state / "events.jsonl"

                def accepted():
                    events = [json.loads(l) for l in log.read_text().splitlines()]
                    return [e for e in events if e["kind"] == "message_accepted"
                            and e["helo"] == "p1.mxsim.test"]
                tries = iter(range(10**6))

                def all_accepted():
                    # Under load P1's first connection can fail before mxsim listens on
                    # it; a deferred message would then wait minimal_backoff_time (300 s),
                    # so ask P1 to retry now and then, as an operator would (postqueue -f).
                    if next(tries) % 25 == 24:
                        p1.flush()
                    got = accepted()
                    return len(got) == n and got
                got = wait_for(all_accepted, what="P1 -> mxsim")
                assert sorted(e["trace"] for e in got) == sorted(
                    f"pf{i}@sender.example" for i in range(n))
                assert p2.queue() == []          # held at mxsim until ETRN
                with smtplib.SMTP("127.0.0.1", served.port(), local_hostname="dial.test") as c:
                    c.ehlo()
                    assert c.docmd("ETRN", "customer.example")[0] in (250, 251, 252, 253)
                queued = wait_for(lambda: len(p2.queue()) == n and p2.queue(), what="mxsim -> P2")
        finally:
            assert served.stop() == 0
        rcpts = sorted(m["recipients"][0]["address"] for m in queued)
        assert rcpts == [f"u{i}@customer.example" for i in range(n)]
        for m in queued:
            i = int(m["recipients"][0]["address"][1:].split("@")[0])
            text = postcat_body(p2, m["queue_id"]).replace("\r\n", "\n")
            assert f"line one of {i}\nline two of {i}\n" in text
            assert m["sender"] == "ann@sender.example"


def probe(port: int, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([MXSIM, "probe", f"127.0.0.1:{port}", *extra],
                          capture_output=True, text=True, timeout=300)


def test_probe_judges_postfix_open_and_closed(tmp_path):
    open_pf = PostfixInstance(free_port(), hostname="open.mxsim.test",
                              settings={"relay_domains": "example.net"})
    with open_pf:
        out = probe(open_pf.port, "--domain", "example.net")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "open-relay       FAIL" in out.stdout        # loopback is in mynetworks
    closed = PostfixInstance(free_port(), hostname="closed.mxsim.test",
                             mynetworks="192.0.2.0/24",
                             settings={"relay_domains": "example.net",
                                       "smtpd_recipient_limit": "150"})
    with closed:
        out = probe(closed.port, "--domain", "example.net", "--recipients", "160")
    assert out.returncode == 0, out.stdout + out.stderr
    for line in ("banner           pass", "open-relay       pass    0 of 19 forms accepted",
                 "size             pass", "enhanced-codes   pass", "reply-codes      pass",
                 "recipient-limit  pass    limit 150, then 452 4.5.3", "pipelining       pass"):
        assert line in out.stdout, out.stdout
