"""swaks and the finger client against ``mxsim serve`` (slow).

swaks (Debian ``swaks``) runs AUTH PLAIN and AUTH LOGIN after STARTTLS,
pipelined, against a served restricted relay with a trustme certificate,
and the relay delivers every message to an aiosmtpd sink, checked by a
header swaks adds; a wrong password is refused.  The finger client
(Debian ``finger``) releases mail a queueing server holds for a domain
(SMTP-on-Demand), checked at the sink.
"""
from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time

import pytest
import trustme
from aiosmtpd.controller import Controller

from helpers.serve import start_serve

pytestmark = pytest.mark.slow


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: apt-get install -y {name}")
    return path


class Sink:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.content)
        return "250 OK"


@pytest.fixture
def sink():
    handler = Sink()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        handler.port = s.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port,
                            server_hostname="sink.test", ready_timeout=10)
    controller.start()
    yield handler
    controller.stop()


def wait_for(cond, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.1)


def scenario(tmp_path, sink_port: int):
    path = tmp_path / "peers.yaml"
    path.write_text(f"""\
name: swaks-finger
seed: 1
duration: 1h
hosts:
  - {{name: relay.example.com, address: 192.0.2.60}}
  - {{name: queue.isp.example, address: 192.0.2.30}}
roles:
  - role: relay
    host: relay.example.com
    auth: {{users: {{dan: dan-pw, fay: fay-pw}}}}
    routes: {{example.net: "[127.0.0.1]:{sink_port}"}}
  - role: queueing-server
    host: queue.isp.example
    relay_domains: customer.example
    finger: {{enabled: true}}
    routes: {{customer.example: "[127.0.0.1]:{sink_port}"}}
""")
    return path


@pytest.fixture
def certificate(tmp_path):
    ca = trustme.CA()
    cert = ca.issue_cert("relay.example.com", "127.0.0.1")
    cert_pem, key_pem = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_pem))
    cert.private_key_pem.write_to_path(str(key_pem))
    return cert_pem, key_pem


def swaks(port: int, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([tool("swaks"), "--server", f"127.0.0.1:{port}", "--helo", "client.test",
                           "--from", "dan@example.com", "--to", "bob@example.net",
                           "--timeout", "20", *args], capture_output=True, text=True, timeout=60)


def test_swaks_auth_starttls_pipelining_through_a_served_relay(tmp_path, sink, certificate):
    cert, key = certificate
    served = start_serve(scenario(tmp_path, sink.port), "relay.example.com", tmp_path / "state",
                         "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        runs = [("PLAIN", "dan", "dan-pw", ["--pipeline"]),
                ("LOGIN", "fay", "fay-pw", ["--pipeline"]),
                ("PLAIN", "dan", "dan-pw", [])]
        for i, (mech, user, password, extra) in enumerate(runs):
            done = swaks(served.port(), "--tls", "--auth", mech, "--auth-user", user,
                         "--auth-password", password, "--header", f"X-Swaks-Run: run{i}", *extra)
            assert done.returncode == 0, done.stdout[-2000:]
            assert "=== TLS started with cipher" in done.stdout, done.stdout[-2000:]
            assert "~> AUTH " + mech in done.stdout and "<~  235" in done.stdout, done.stdout[-2000:]
        wrong = swaks(served.port(), "--tls", "--auth", "PLAIN", "--auth-user", "dan",
                      "--auth-password", "nope")
        assert wrong.returncode != 0 and "535" in wrong.stdout
        no_auth = swaks(served.port(), "--tls")
        assert no_auth.returncode != 0 and "530" in no_auth.stdout
        wait_for(lambda: len(sink.messages) == len(runs))
    finally:
        assert served.stop() == 0
    got = sorted(m.split(b"X-Swaks-Run: ")[1][:4].decode() for m in sink.messages)
    assert got == [f"run{i}" for i in range(len(runs))]


def loopback() -> str:
    """A loopback address whose finger port (79) is free."""
    rng = random.Random()
    while True:
        address = f"127.{rng.randrange(1, 255)}.{rng.randrange(1, 255)}.{rng.randrange(2, 255)}"
        with socket.socket() as s:
            try:
                s.bind((address, 79))
                return address
            except OSError:
                continue


def test_finger_client_releases_held_mail(tmp_path, sink):
    import smtplib
    address = loopback()
    served = start_serve(scenario(tmp_path, sink.port), "queue.isp.example", tmp_path / "state",
                         "--listen", f"79={address}:79")
    try:
        with smtplib.SMTP("127.0.0.1", served.port(), local_hostname="client.test") as c:
            for i in range(3):
                c.sendmail("a@client.test", [f"u{i}@customer.example"],
                           f"Subject: held {i}\r\n\r\nheld body {i}\r\n")
        time.sleep(0.5)
        assert sink.messages == []
        done = subprocess.run([tool("finger"), f"customer.example@{address}"],
                              capture_output=True, text=True, timeout=30)
        assert "delivery of 3 queued messages started" in done.stdout, done.stdout + done.stderr
        wait_for(lambda: len(sink.messages) == 3)
    finally:
        assert served.stop() == 0
    assert sorted(b"held body" in m for m in sink.messages) == [True] * 3
