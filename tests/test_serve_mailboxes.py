"""Served mailboxes: ``mxsim serve`` files local mail into Maildirs under
``--state`` and its POP3 server reads them, across restarts.

Mail goes in with swaks; it is read back with ``poplib`` (UIDL, RETR, DELE,
byte for byte against the Maildir file and what was sent) and with
fetchmail (``apt-get install -y fetchmail``) across a restart and a SIGKILL.
"""
from __future__ import annotations

import poplib
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from helpers.serve import start_serve as _start_serve
from sim.cli import main

HOST = "mail.example.net"
ANN, PASSWORD = "ann@example.net", "ann-pw"
LISTEN = (25, 587, 110)


@pytest.fixture
def start_serve():
    """``helpers.serve.start_serve``, killing whatever still runs at the end
    (a failed assertion must not leave a server behind)."""
    started = []

    def start(*args, **kw):
        started.append(_start_serve(*args, **kw))
        return started[-1]
    yield start
    for served in started:
        if served.proc.poll() is None:
            served.stop(signal.SIGKILL)


def scenario(tmp_path: Path) -> Path:
    """A primary MX whose host also runs a POP3 server over its mailboxes
    (a relay with POP-before-SMTP: the scenario format's POP3 host)."""
    path = tmp_path / "pop.yaml"
    path.write_text(f"""\
name: live-pop3
description: a primary MX whose mailboxes are read over POP3
seed: 1
duration: 1h
hosts:
  - {{name: {HOST}, address: 192.0.2.10}}
dns:
  zones: |
    $ORIGIN example.net.
    @   MX 10 {HOST}.
    mail  A 192.0.2.10
roles:
  - role: primary-mx
    host: {HOST}
    local_domains: example.net
  - role: relay
    host: {HOST}
    ports: [587]
    pop_before_smtp:
      users: {{ann: {PASSWORD}}}
      mailboxes: {{ann: {ANN}}}
      port: 110
expectations:
  - guarantee: conservation
""")
    return path


def message(i: int) -> bytes:
    # A dot-led line (dot-stuffing both ways) and a long one.
    return (f"Message-ID: <box{i}@client.test>\r\nFrom: a@client.test\r\nTo: {ANN}\r\n"
            f"Subject: box {i}\r\n\r\nbody {i}\r\n.dot line {i}\r\n" + "x" * 900 +
            "\r\n").encode()


def swaks(port: int, data: bytes, tmp_path: Path) -> None:
    assert shutil.which("swaks"), "swaks is not installed: apt-get install -y swaks"
    body = tmp_path / "swaks.eml"
    body.write_bytes(data.removesuffix(b"\r\n"))   # swaks ends the data with its own CRLF
    out = subprocess.run(["swaks", "--server", f"127.0.0.1:{port}", "--helo", "client.test",
                          "--from", "a@client.test", "--to", ANN, "--data", f"@{body}"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "<-  250 " in out.stdout.split("~> .")[-1], out.stdout


def maildir_files(state: Path) -> dict[str, bytes]:
    new = state / "mail" / ANN / "new"
    return {p.name: p.read_bytes() for p in sorted(new.iterdir())} if new.is_dir() else {}


def wait_files(state: Path, n: int) -> dict[str, bytes]:
    """The Maildir once it holds ``n`` messages: a primary MX queues, says
    250, then files the copy, so the file follows the reply by a moment."""
    deadline = time.monotonic() + 30
    while len(files := maildir_files(state)) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    return files


def pop_session(port: int):
    box = poplib.POP3("127.0.0.1", port, timeout=30)
    box.user("ann")
    box.pass_(PASSWORD)
    return box


def retr(box, n: int) -> bytes:
    _, lines, _ = box.retr(n)
    return b"".join(line + b"\r\n" for line in lines)


def uidl(box) -> list[str]:
    return [line.split()[1].decode() for line in box.uidl()[1]]


@pytest.mark.slow
def test_swaks_in_poplib_out_across_restarts(tmp_path, start_serve):
    state = tmp_path / "state"
    path = scenario(tmp_path)
    served = start_serve(path, HOST, state, listen=LISTEN)
    assert any(l.startswith("listening pop3 127.0.0.1:") and l.endswith(f"(port 110 of {HOST})")
               for l in served.lines), served.lines
    for i in (1, 2, 3):
        swaks(served.port(25), message(i), tmp_path)
    files = wait_files(state, 3)
    assert len(files) == 3 and not any((state / "mail" / ANN / "tmp").iterdir())
    box = pop_session(served.port(110, "pop3"))
    first_uids = uidl(box)
    got = [retr(box, n) for n in (1, 2, 3)]
    box.quit()
    # Byte for byte: what POP3 serves is the Maildir file, which is what was
    # sent after the Received header the MX put on top.
    assert got == list(files.values())
    for i, data in enumerate(got, 1):
        assert data.startswith(b"Received: from client.test") and data.endswith(message(i))
    assert served.stop() == 0

    served = start_serve(path, HOST, state, listen=LISTEN)
    box = pop_session(served.port(110, "pop3"))
    assert uidl(box) == first_uids          # the same IDs after a restart
    assert [retr(box, n) for n in (1, 2, 3)] == got
    box.dele(2)
    box.quit()
    assert list(maildir_files(state).values()) == [got[0], got[2]]
    assert served.stop(signal.SIGKILL) == -signal.SIGKILL

    served = start_serve(path, HOST, state, listen=LISTEN)
    box = pop_session(served.port(110, "pop3"))
    assert uidl(box) == [first_uids[0], first_uids[2]]
    assert [retr(box, 1), retr(box, 2)] == [got[0], got[2]]
    box.quit()
    assert served.stop() == 0


@pytest.mark.slow
def test_fetchmail_reads_served_mailboxes_across_a_restart(tmp_path, start_serve):
    assert shutil.which("fetchmail"), "fetchmail is not installed: apt-get install -y fetchmail"
    state = tmp_path / "state"
    path = scenario(tmp_path)
    served = start_serve(path, HOST, state, listen=LISTEN)
    for i in (1, 2):
        swaks(served.port(25), message(i), tmp_path)
    stored = list(wait_files(state, 2).values())
    assert len(stored) == 2
    assert served.stop() == 0
    served = start_serve(path, HOST, state, listen=LISTEN)   # mail waits on disk
    swaks(served.port(25), message(3), tmp_path)
    stored += [d for d in wait_files(state, 3).values() if d not in stored]
    assert len(stored) == 3
    mbox = tmp_path / "fetched.mbox"
    rc = tmp_path / "fetchmailrc"
    rc.write_text(f'poll 127.0.0.1 service {served.port(110, "pop3")} protocol POP3 '
                  f'auth password timeout 30\n'
                  f'  user "ann" there with password "{PASSWORD}" is "root" here\n'
                  f'  sslproto "" mda "cat >> {mbox}"\n')
    rc.chmod(0o600)
    out = subprocess.run(["fetchmail", "--fetchmailrc", str(rc), "--idfile",
                          str(tmp_path / "fetchids"), "--nosyslog", "-v"],
                         capture_output=True, text=True, timeout=120,
                         env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 messages for ann" in out.stdout + out.stderr, out.stdout + out.stderr
    fetched = mbox.read_bytes()
    # fetchmail hands the MDA LF line ends and its own Received on top.
    for data in stored:
        assert data.replace(b"\r\n", b"\n") in fetched
    assert maildir_files(state) == {}           # fetchmail deleted what it fetched
    assert served.stop() == 0


def test_unwritable_mailboxes_exit_2_before_listening(tmp_path, capsys):
    state = tmp_path / "state"
    state.mkdir()
    (state / "mail").write_text("not a folder")
    rc = main(["serve", str(scenario(tmp_path)), "--host", HOST, "--state", str(state)])
    err = capsys.readouterr()
    assert rc == 2, err
    assert f"--state: mailboxes: cannot write in {state / 'mail'}" in err.err, err.err
    assert "listening" not in err.out
    assert (state / "mail").read_text() == "not a folder"
