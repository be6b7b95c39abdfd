"""The probes against real servers on loopback: mxsim's roles as ``mxsim
serve`` builds them (in this process), aiosmtpd's accept-all handler, and
targets that are not SMTP or hang up; ``mxsim probe``'s exit status."""
from __future__ import annotations

import asyncio
import socket

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from mta.events.sinks import MemorySink
from mta.probes.client import TargetError
from mta.probes.run import ProbeOptions, probe_target
from sim.cli import main
from sim.live.host import LiveHost
from sim.live.listen import Endpoint
from sim.pipeline import load_string
from sim.wiring import plan_hosts

HOSTS = """\
name: probe-target
seed: 1
duration: 1h
hosts:
  - {name: mx1.example.net, address: 192.0.2.10}
  - {name: relay.example.com, address: 192.0.2.20}
  - {name: feed.example.org, address: 192.0.2.40}
  - {name: queue.example.org, address: 192.0.2.50}
roles:
  - {role: primary-mx, host: mx1.example.net, local_domains: example.net}
  - role: relay
    host: relay.example.com
    auth: {users: {dan: dan-pw}}
    recipient_limit: {limit: 120, behaviour: conformant}
  - role: smtp-feed
    host: feed.example.org
    client_domains: client.example
    routes: {client.example: "[127.0.0.1]:9"}
    greylisting: {delay: 2s}
  - role: queueing-server
    host: queue.example.org
    relay_domains: customer.example
    recipient_limit: {limit: 50, behaviour: conformant}
"""


def by_probe(findings):
    return {f.probe: f for f in findings}


async def with_host(tmp_path, name: str, **options):
    """Start scenario host ``name`` live, probe it, stop it; the findings."""
    plan = plan_hosts(load_string(HOSTS))[name]
    host = LiveHost(plan, tmp_path, MemorySink(), resolver=None,
                    listen={25: Endpoint("127.0.0.1", 0)}, grace=0.1)
    ready = await host.start()
    try:
        return await probe_target(ProbeOptions(host="127.0.0.1", port=ready[0].bound.port,
                                               token="t1", **options))
    finally:
        await host.drain()


def test_primary_mx_passes_every_judged_probe(tmp_path):
    found = by_probe(asyncio.run(with_host(tmp_path, "mx1.example.net", domain="example.net")))
    assert not [f for f in found.values() if f.failed], found
    assert found["open-relay"].status == "pass" and "0 of 19" in found["open-relay"].summary
    assert found["size"].status == "pass" and "552 5.3.4" in found["size"].summary
    assert found["enhanced-codes"].status == "pass"
    assert found["pipelining"].status == "pass"
    assert found["etrn"].status == "info"          # a primary MX offers no ETRN


def test_relay_asks_for_auth_and_limits_recipients(tmp_path):
    found = by_probe(asyncio.run(with_host(tmp_path, "relay.example.com", domain="example.net",
                                           rcpt="someone@example.net", recipients=130)))
    assert found["open-relay"].status == "pass"
    assert found["auth-relay"].status == "pass"
    assert "530" in found["auth-relay"].summary
    # the relay refuses foreign recipients without AUTH, so the limit is not reached:
    assert found["recipient-limit"].status == "skip"


def test_queueing_server_limit_below_the_rfc_minimum_fails(tmp_path):
    found = by_probe(asyncio.run(with_host(tmp_path, "queue.example.org",
                                           domain="customer.example")))
    f = found["recipient-limit"]
    assert f.status == "fail" and "after 50 recipients" in f.summary
    assert found["etrn"].status == "pass"


def test_feed_greylists_then_accepts_after_the_delay(tmp_path):
    found = by_probe(asyncio.run(with_host(tmp_path, "feed.example.org", domain="client.example",
                                           rcpt="ann@client.example", greylist_wait=3)))
    f = found["greylisting"]
    assert f.status == "pass" and "first attempt 450" in f.summary


def test_feed_greylisting_without_a_wait_is_reported_not_judged(tmp_path):
    found = by_probe(asyncio.run(with_host(tmp_path, "feed.example.org", domain="client.example",
                                           rcpt="ann@client.example")))
    assert found["greylisting"].status == "info"
    assert "--greylist-wait" in found["greylisting"].summary


class Accept:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"


@pytest.fixture
def accept_all():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(Accept(), hostname="127.0.0.1", port=port,
                            server_hostname="sink.mxsim.test", ready_timeout=10)
    controller.start()
    yield port
    controller.stop()


def test_aiosmtpd_accept_all_is_an_open_relay(accept_all, capsys, tmp_path):
    junit = tmp_path / "probe.xml"
    rc = main(["probe", f"127.0.0.1:{accept_all}", "--domain", "example.net",
               "--junit", str(junit)])
    out = capsys.readouterr().out
    assert rc == 1
    assert "open-relay       FAIL    open relay: 16 of 19 forms accepted" in out
    text = junit.read_text()
    assert '<testcase classname="mxsim.probe" name="open-relay"><failure' in text


async def _serve_bytes(handler) -> tuple[asyncio.AbstractServer, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_a_server_that_is_not_smtp_is_a_target_error():
    async def http(reader, writer):
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        await writer.drain()
        writer.close()

    async def go():
        server, port = await _serve_bytes(http)
        async with server:
            with pytest.raises(TargetError, match="not an SMTP reply to the greeting"):
                await probe_target(ProbeOptions(host="127.0.0.1", port=port))
    asyncio.run(go())


def test_a_server_that_hangs_up_mid_dialogue_is_a_target_error():
    async def rude(reader, writer):
        writer.write(b"220 rude.test ESMTP\r\n")
        await reader.readline()
        writer.close()

    async def go():
        server, port = await _serve_bytes(rude)
        async with server:
            with pytest.raises(TargetError, match="closed the connection instead of answering"):
                await probe_target(ProbeOptions(host="127.0.0.1", port=port))
    asyncio.run(go())


def test_unreachable_target_and_bad_arguments_exit_2(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]          # bound, never listening: refused
        assert main(["probe", f"127.0.0.1:{port}"]) == 2
    assert "cannot connect" in capsys.readouterr().err
    assert main(["probe", "127.0.0.1"]) == 2
    assert main(["probe", "127.0.0.1:25", "--domain", "not a domain"]) == 2
    assert main(["probe", "127.0.0.1:25", "--idle", "-1"]) == 2
    err = capsys.readouterr().err
    assert "expected HOST:PORT" in err and "--domain" in err and "--idle" in err
