"""nmap's smtp-open-relay against every non-relay role served live (slow).

Each role runs in ``mxsim serve`` on port 25 of its own loopback address
(nmap runs the script only on the SMTP ports without service detection);
nmap tries its 16 relay forms to a foreign domain and must report none
accepted.  The same run against aiosmtpd's accept-all handler reports an
open relay, so the test can fail.  Debian package: ``nmap``.
"""
from __future__ import annotations

import random
import shutil
import socket
import subprocess

import pytest
from aiosmtpd.controller import Controller

from helpers.serve import start_serve

pytestmark = pytest.mark.slow

APT = "apt-get install -y nmap"

SCENARIO = """\
name: nmap-roles
seed: 1
duration: 1h
hosts:
  - {name: mx1.example.net, address: 192.0.2.10}
  - {name: mx2.example.net, address: 192.0.2.11}
  - {name: queue.isp.example, address: 192.0.2.30}
  - {name: feed.provider.example, address: 192.0.2.40}
  - {name: mail.client.example, address: 192.0.2.50}
  - {name: relay.example.com, address: 192.0.2.60}
roles:
  - {role: primary-mx, host: mx1.example.net, local_domains: example.net}
  - {role: secondary-mx, host: mx2.example.net, relay_domains: example.net}
  - {role: queueing-server, host: queue.isp.example, relay_domains: customer.example}
  - role: smtp-feed
    host: feed.provider.example
    client_domains: client.example
    routes: {client.example: "[127.0.0.1]:9"}
  - role: customer-server
    host: mail.client.example
    local_domains: client.example
    valid_recipients: [ann@client.example]
  - role: relay
    host: relay.example.com
    auth: {users: {dan: dan-pw}}
"""
HOSTS = ["mx1.example.net", "mx2.example.net", "queue.isp.example", "feed.provider.example",
         "mail.client.example", "relay.example.com"]


def nmap(address: str, port: int = 25) -> str:
    binary = shutil.which("nmap")
    if binary is None:
        pytest.fail(f"nmap is not installed: {APT}")
    done = subprocess.run([binary, "-Pn", "-n", "-p", str(port), "--script", "smtp-open-relay",
                           "--script-args", "smtp-open-relay.domain=nmap.scanme.org,"
                           "smtp-open-relay.to=relaytest+probe", address],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def loopback() -> str:
    """A loopback address of its own (port 25 there is free)."""
    rng = random.Random()
    while True:
        address = f"127.{rng.randrange(1, 255)}.{rng.randrange(1, 255)}.{rng.randrange(2, 255)}"
        with socket.socket() as s:
            try:
                s.bind((address, 25))
                return address
            except OSError:
                continue


@pytest.mark.parametrize("host", HOSTS)
def test_nmap_finds_no_open_relay(tmp_path, host):
    path = tmp_path / "roles.yaml"
    path.write_text(SCENARIO)
    address = loopback()
    served = start_serve(path, host, tmp_path / "state", "--listen", f"25={address}:25",
                         listen=())
    try:
        out = nmap(address)
    finally:
        assert served.stop() == 0
    verdicts = ("smtp-open-relay: Server doesn't seem to be an open relay, all tests failed",
                # the AUTH relay: nmap stops when RCPT asks for authentication (530)
                "smtp-open-relay: Server isn't an open relay, authentication needed")
    assert any(v in out for v in verdicts), out


def test_nmap_finds_the_accept_all_handler_open():
    class Accept:
        async def handle_DATA(self, server, session, envelope):
            return "250 OK"

    address = loopback()
    controller = Controller(Accept(), hostname=address, port=25, server_hostname="sink.test",
                            ready_timeout=10)
    controller.start()
    try:
        out = nmap(address)
    finally:
        controller.stop()
    assert "smtp-open-relay: Server is an open relay (" in out, out   # 14 of 16 here
