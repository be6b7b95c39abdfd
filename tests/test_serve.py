"""``mxsim serve``: a scenario host on real loopback sockets, as a subprocess.

Mail goes in with ``smtplib``; a queueing server's held mail leaves on ETRN
to an aiosmtpd sink (in a thread); SIGTERM lets a transaction in progress
finish and exits 0; SIGKILL loses nothing that was acknowledged; the live
log is judged by ``mxsim report``; bad input exits 2 and writes nothing.
"""
from __future__ import annotations

import json
import re
import os
import signal
import smtplib
import socket
import subprocess
import time
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from helpers.serve import MXSIM, start_serve
from sim.cli import main

MX = "mx.example.net"
QUEUE = "queue.isp.example"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scenario(tmp_path: Path, sink_port: int = 9) -> Path:
    text = f"""\
name: live-test
description: a primary MX and a queueing server, served live
seed: 1
duration: 1h
hosts:
  - {{name: {MX}, address: 192.0.2.10}}
  - {{name: {QUEUE}, address: 192.0.2.30}}
dns:
  zones: |
    $ORIGIN example.net.
    @   MX 10 {MX}.
    mx  A 192.0.2.10
roles:
  - role: primary-mx
    host: {MX}
    local_domains: example.net
  - role: queueing-server
    host: {QUEUE}
    relay_domains: customer.example
    etrn: {{allowed: 127.0.0.0/8}}
    routes: {{customer.example: "[127.0.0.1]:{sink_port}"}}
expectations:
  - guarantee: conservation
"""
    path = tmp_path / "live.yaml"
    path.write_text(text)
    return path


class Sink:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture
def sink():
    handler = Sink()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port,
                            server_hostname="sink.test", ready_timeout=10)
    controller.start()
    handler.port = port
    yield handler
    controller.stop()


def wait_for(cond, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def message(i: int) -> str:
    return f"Message-ID: <live{i}@client.test>\r\nSubject: live {i}\r\n\r\nbody {i}\r\n"


def test_primary_mx_serves_and_a_live_log_is_judged(tmp_path):
    state = tmp_path / "state"
    served = start_serve(scenario(tmp_path), MX, state)
    assert any(l.startswith("listening smtp 127.0.0.1:") and l.endswith(f"(port 25 of {MX})")
               for l in served.lines), served.lines
    assert any(l.startswith("listening dns 127.0.0.1:") for l in served.lines)
    with smtplib.SMTP("127.0.0.1", served.port(), local_hostname="client.test") as c:
        banner = c.ehlo()[1].decode()
        assert banner.startswith(MX)
        assert c.sendmail("a@client.test", ["bob@example.net"], message(1)) == {}
        c.mail("a@client.test")
        code, _ = c.rcpt("x@elsewhere.test")      # not an open relay
        assert code == 554
    assert served.stop() == 0
    events = [json.loads(l) for l in (state / "events.jsonl").read_text().splitlines()]
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "run_started"
    assert "delivered_to_mailbox" in kinds
    maillog = (state / "maillog").read_text()
    # Postfix's own format (mta.maillog), the same as a simulated run's maillog
    assert re.search(r" mx postfix/local\[\d+\]: \w+: to=<bob@example.net>, .*status=sent",
                     maillog), maillog
    assert "NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 554 5.7.1" in maillog
    out = subprocess.run([MXSIM, "report", str(state)],
                         capture_output=True, text=True)
    assert out.returncode in (0, 1), out.stderr
    verdict = json.loads((state / "verdict.json").read_text())
    assert verdict["scenario"] == "live-test"
    assert verdict["counts"]["delivered"] == 1


@pytest.mark.slow
def test_held_mail_survives_sigkill_and_leaves_on_etrn(tmp_path, sink):
    state = tmp_path / "state"
    path = scenario(tmp_path, sink.port)
    served = start_serve(path, QUEUE, state)
    with smtplib.SMTP("127.0.0.1", served.port(), local_hostname="client.test") as c:
        for i in range(5):
            assert c.sendmail("a@client.test", [f"u{i}@customer.example"], message(i)) == {}
    assert served.stop(signal.SIGKILL) == -signal.SIGKILL
    assert sink.messages == []                    # held for the customer's ETRN
    served = start_serve(path, QUEUE, state)
    assert "5 messages recovered" in served.lines[-1]
    with smtplib.SMTP("127.0.0.1", served.port(), local_hostname="dial.customer.test") as c:
        c.ehlo()
        code, text = c.docmd("ETRN", "customer.example")
        assert code in (250, 251, 252, 253), text
    wait_for(lambda: len(sink.messages) == 5)
    bodies = sorted(m[2].decode() for m in sink.messages)
    assert all(f"body {i}" in bodies[i] for i in range(5))
    assert served.stop() == 0
    lines = (state / "events.jsonl").read_text().splitlines()
    assert sum('"kind":"run_started"' in l for l in lines) == 1   # one run, two generations
    assert any('"kind":"host_restarted"' in l for l in lines)


def test_sigterm_finishes_the_transaction_in_progress(tmp_path):
    state = tmp_path / "state"
    served = start_serve(scenario(tmp_path), MX, state)
    idle = smtplib.SMTP("127.0.0.1", served.port(), local_hostname="idle.test")
    c = smtplib.SMTP("127.0.0.1", served.port(), local_hostname="client.test")
    c.ehlo()
    c.mail("a@client.test")
    c.rcpt("bob@example.net")
    c.putcmd("DATA")
    assert c.getreply()[0] == 354
    os.kill(served.proc.pid, signal.SIGTERM)

    def refused() -> bool:                        # no new connections once it stops
        try:
            socket.create_connection(("127.0.0.1", served.port()), timeout=2).close()
        except ConnectionRefusedError:
            return True
        return False
    wait_for(refused)
    try:
        code = idle.noop()[0]
    except smtplib.SMTPServerDisconnected:
        code = 421
    assert code == 421                            # sessions between transactions are closed
    idle.close()
    c.send(b"Subject: in flight\r\n\r\nfinished after SIGTERM\r\n.\r\n")
    assert c.getreply()[0] == 250
    c.close()
    assert served.stop() == 0
    log = (state / "events.jsonl").read_text()
    assert '"kind":"delivered_to_mailbox"' in log


def serve_main(capsys, *argv) -> tuple[int, str]:
    """``mxsim serve ARGV`` in this process: (exit status, standard error)."""
    rc = main(["serve", *map(str, argv)])
    return rc, capsys.readouterr().err


def test_unknown_host_exits_2_and_writes_nothing(tmp_path, capsys):
    state = tmp_path / "state"
    rc, err = serve_main(capsys, scenario(tmp_path), "--host", "nope.example", "--state", state)
    assert rc == 2
    assert "no such host" in err and MX in err
    assert not state.exists()


def test_port_in_use_exits_2_and_writes_nothing(tmp_path, capsys):
    state = tmp_path / "state"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        rc, err = serve_main(capsys, scenario(tmp_path), "--host", MX, "--state", state,
                             "--listen", f"25=127.0.0.1:{port}")
    assert rc == 2
    assert f"cannot listen on 127.0.0.1:{port}" in err
    assert not state.exists()


def test_the_scenario_is_validated_first(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(scenario(tmp_path).read_text().replace("primary-mx", "primary-mxx"))
    rc, err = serve_main(capsys, bad, "--host", MX, "--state", tmp_path / "state")
    assert rc == 2 and "bad.yaml" in err
    assert not (tmp_path / "state").exists()


def test_unwritable_state_exits_2(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.geteuid() != 0:
        rc, err = serve_main(capsys, scenario(tmp_path), "--host", MX, "--state",
                             locked / "state")
    else:
        # Root may write into any folder by mode, not onto a read-only mount: bind the
        # folder read-only in a private mount namespace and serve inside it.
        proc = subprocess.run(
            ["unshare", "-m", "sh", "-c", f'mount --bind -o ro "$1" "$1" && exec "$2" serve '
             f'"$3" --host "$4" --state "$1/state"', "sh", str(locked), MXSIM,
             str(scenario(tmp_path)), MX], capture_output=True, text=True, timeout=120)
        rc, err = proc.returncode, proc.stderr
    assert rc == 2 and "not writable" in err, err
    assert not (locked / "state").exists()


def test_state_the_file_system_refuses_exits_2(tmp_path, capsys):
    # /proc passes the permission check (as root too) and refuses mkdir
    rc, err = serve_main(capsys, scenario(tmp_path), "--host", MX, "--state", "/proc/mxsim-state")
    assert rc == 2 and "--state: cannot write in /proc/mxsim-state" in err, err


def test_state_that_is_a_file_exits_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc, err = serve_main(capsys, scenario(tmp_path), "--host", MX, "--state", blocker / "state")
    assert rc == 2 and "is a file" in err
    assert blocker.read_text() == "x"


@pytest.mark.parametrize("value, message", [
    ("25", "expected PORT=ADDR:PORT"),
    ("25=localhost:2525", "is not an IP address"),
    ("25=127.0.0.1:99999", "the port must be a number"),
    ("587=127.0.0.1:0", "has no server on port 587"),
])
def test_bad_listen_exits_2(tmp_path, capsys, value, message):
    rc, err = serve_main(capsys, scenario(tmp_path), "--host", MX, "--state", tmp_path / "state",
                         "--listen", value)
    assert rc == 2 and message in err, err
    assert not (tmp_path / "state").exists()


def test_a_torn_log_is_cut_back_to_its_last_whole_line(tmp_path):
    from mta.events import HostRestarted
    from sim.evidence.log import read_jsonl
    from sim.live.eventlog import LiveLog
    path = tmp_path / "events.jsonl"
    log = LiveLog(path)
    assert log.fresh
    log.emit(HostRestarted(t=1.0, host=MX, recovered=2))
    log.close()
    with open(path, "ab") as f:
        f.write(b'{"host":"mx.exa')          # a power cut in the middle of a line
    log = LiveLog(path)
    assert not log.fresh and log.repaired == len(b'{"host":"mx.exa')
    log.emit(HostRestarted(t=2.0, host=MX, recovered=0))
    log.close()
    assert [e.t for e in read_jsonl(path)] == [1.0, 2.0]


def test_the_live_maillog_streams_postfix_lines(tmp_path):
    from mta.events import Bounced, Relayed
    from sim.live.maillog import Maillog
    log = Maillog(tmp_path / "maillog")
    log.emit(Relayed(t=0.0, host=QUEUE, msg=f"{QUEUE}/m7", trace="x@y", rcpt="u@customer.example",
                     dest_host="127.0.0.1", dest_ip="127.0.0.1", code=250, text="2.0.0 Ok"))
    log.emit(Bounced(t=0.0, host=QUEUE, msg=f"{QUEUE}/m8", trace="x@y", rcpt="v@c.example",
                     code=550, text="5.1.1 unknown", reason="rejected"))
    log.close()
    lines = (tmp_path / "maillog").read_text().splitlines()
    assert len(lines) == 2 and all(l.startswith("Jan  1 00:00:00 queue postfix/") for l in lines)
    assert "to=<u@customer.example>, relay=127.0.0.1[127.0.0.1]" in lines[0]
    assert "status=sent (250 2.0.0 Ok)" in lines[0]
    assert "dsn=5.1.1, status=bounced" in lines[1]

