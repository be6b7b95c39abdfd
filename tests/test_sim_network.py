"""The virtual network: transports (pitfalls 3, 4, 5), link schedules,
bandwidth sharing, refused versus black-holed connections, port-25 rules."""
from __future__ import annotations

import asyncio
import random

import aiosmtplib
import pytest

from mta.smtp.basic import send_message, serve_sink
from sim.events import LinkDown, LinkUp
from sim.world.network import SYN_GIVE_UP, LinkSpec
from sim.world.schedules import AlwaysUp, DialupWindows, Intervals, Outages, RandomOnOff
from sim.world.core import World


class Recorder(asyncio.Protocol):
    """Records protocol callbacks in order, with times."""

    def __init__(self, log: list, tag: str, keep_open_on_eof: bool = False,
                 greeting: bytes | None = None) -> None:
        self.log, self.tag, self.keep, self.greeting = log, tag, keep_open_on_eof, greeting
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        self.log.append((self.tag, "made", asyncio.get_running_loop().time()))
        if self.greeting:
            transport.write(self.greeting)

    def data_received(self, data):
        self.log.append((self.tag, "data", data))

    def eof_received(self):
        self.log.append((self.tag, "eof"))
        return self.keep

    def connection_lost(self, exc):
        self.log.append((self.tag, "lost", type(exc).__name__ if exc else None))


def two_hosts(client_link=None, server_link=None):
    world = World(seed=3)
    c = world.add_host("client.example", "192.0.2.1", client_link)
    s = world.add_host("server.example", "192.0.2.2", server_link)
    return world, c, s


def listen(world, host, factory, port=25):
    async def go():
        return await asyncio.get_running_loop().create_server(factory, port=port)
    return world.run_until_complete(host, go())


def connect(world, host, factory, ip="192.0.2.2", port=25):
    async def go():
        return await asyncio.get_running_loop().create_connection(factory, ip, port)
    return world.run_until_complete(host, go())


def test_greeting_before_connection_made_is_buffered():
    """Pitfall 3: the greeting reaches the client transport before the
    client's connection_made; it must be delivered after it, intact."""
    world, c, s = two_hosts(LinkSpec(latency=0.05), LinkSpec(latency=0.05))
    log: list = []
    listen(world, s, lambda: Recorder(log, "server", greeting=b"220 hello\r\n"))
    connect(world, c, lambda: Recorder(log, "client"))
    world.run(until=1)
    client = [e for e in log if e[0] == "client"]
    assert client[0][:2] == ("client", "made") and client[0][2] == pytest.approx(0.2)
    assert client[1] == ("client", "data", b"220 hello\r\n")


def test_eof_closes_a_protocol_that_does_not_ask_for_half_close():
    """Pitfall 4, aiosmtplib's side: eof_received() returns None."""
    world, c, s = two_hosts()
    log: list = []
    listen(world, s, lambda: Recorder(log, "server", keep_open_on_eof=True))
    tr, _ = connect(world, c, lambda: Recorder(log, "client", keep_open_on_eof=False))
    world.run(until=1)
    # The server closes: the client gets EOF and, not keeping the connection
    # half-open, its transport closes itself.
    srv_tr = next(iter(s.link.connections.values())).ends[1]
    srv_tr.close()
    world.run(until=2)
    assert ("client", "eof") in log and ("client", "lost", None) in log
    assert tr.is_closing()


def test_eof_keeps_half_open_for_stream_protocols():
    """Pitfall 4, aiosmtpd's side: eof_received() returns True and the
    connection stays half-open until that side closes."""
    world, c, s = two_hosts()
    log: list = []
    listen(world, s, lambda: Recorder(log, "server", keep_open_on_eof=True))
    tr, _ = connect(world, c, lambda: Recorder(log, "client"))
    tr.write_eof()
    world.run(until=1)
    assert ("server", "eof") in log and not any(e[:2] == ("server", "lost") for e in log)
    srv_tr = next(iter(s.link.connections.values())).ends[1]
    srv_tr.write(b"late reply")
    world.run(until=2)
    assert ("client", "data", b"late reply") in log
    srv_tr.close()
    world.run(until=3)
    assert ("server", "lost", None) in log


def test_cancelled_connect_aborts_the_half_open_connection():
    """Pitfall 5: a connect cancelled by an application timeout must not
    leave the server holding a half-open connection."""
    world, c, s = two_hosts(LinkSpec(latency=1.0), LinkSpec(latency=1.0))
    log: list = []
    listen(world, s, lambda: Recorder(log, "server"))

    async def impatient():
        loop = asyncio.get_running_loop()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(loop.create_connection(lambda: Recorder(log, "client"),
                                                          "192.0.2.2", 25), timeout=3.0)

    world.run_until_complete(c, impatient())
    world.run(until=20)
    assert [e[:2] for e in log] == [("server", "made"), ("server", "lost")]
    assert log[-1][2] == "ConnectionResetError"
    assert not s.link.connections and not c.link.connections


def test_schedules_give_their_transitions():
    rng = random.Random(1)
    assert list(AlwaysUp().transitions(rng)) == []
    assert list(Outages([(10, 20), (30, 40)]).transitions(rng)) == [
        (10, False), (20, True), (30, False), (40, True)]
    assert not Outages([(0, 5)]).initial_up
    assert list(Intervals([(0, 5), (10, 15)]).transitions(rng)) == [(5, False), (10, True), (15, False)]
    it = DialupWindows(up=600, every=3600, offset=100).transitions(rng)
    assert [next(it) for _ in range(4)] == [(100, True), (700, False), (3700, True), (4300, False)]
    jittered = DialupWindows(up=600, every=3600, jitter=300)
    a = [next(jittered.transitions(random.Random(9))) for _ in range(1)]
    b = [next(jittered.transitions(random.Random(9))) for _ in range(1)]
    assert a == b and 0 <= a[0][0] <= 300
    onoff = RandomOnOff(mean_up=100, mean_down=50).transitions(random.Random(4))
    times = [next(onoff) for _ in range(6)]
    assert [up for _, up in times] == [False, True, False, True, False, True]
    assert all(t1 < t2 for (t1, _), (t2, _) in zip(times, times[1:]))
    with pytest.raises(ValueError):
        Outages([(20, 10)])
    with pytest.raises(ValueError):
        DialupWindows(up=600, every=3600, jitter=3500)


def test_link_schedule_drives_link_state_and_events():
    world, c, s = two_hosts(server_link=LinkSpec(schedule=DialupWindows(up=600, every=3600, offset=60)))
    states = []

    async def watch():
        for t in (30, 100, 700, 3700):
            await asyncio.sleep(t - asyncio.get_running_loop().time())
            states.append(s.link.up)

    world.run_until_complete(c, watch())
    assert states == [False, True, False, True]
    marks = [(type(e).__name__, e.t) for e in world.events if isinstance(e, (LinkUp, LinkDown))]
    assert marks == [("LinkDown", 0.0), ("LinkUp", 60.0), ("LinkDown", 660.0), ("LinkUp", 3660.0)]


def test_bandwidth_is_shared_by_connections_on_a_link():
    """Two 7,000-byte writes over a 7,000 B/s line: the second finishes a
    second after the first, because the line is shared."""
    world, c, s = two_hosts(LinkSpec(latency=0.0, bandwidth=7000), LinkSpec(latency=0.0))
    arrivals: list[float] = []

    class Sink(asyncio.Protocol):
        def data_received(self, data):
            arrivals.append(asyncio.get_running_loop().time())

    listen(world, s, Sink)
    t1, _ = connect(world, c, asyncio.Protocol)
    t2, _ = connect(world, c, asyncio.Protocol)
    start = world.now()
    t1.write(b"a" * 7000)
    t2.write(b"b" * 7000)
    world.run(until=start + 10)
    assert [round(a - start, 6) for a in arrivals] == [1.0, 2.0]


def test_down_link_refuses_or_times_out_per_configuration():
    for mode, exc, at in (("refuse", ConnectionRefusedError, 0.02), ("timeout", TimeoutError, SYN_GIVE_UP)):
        world, c, s = two_hosts(server_link=LinkSpec(schedule=Outages([(0, 10_000)]), down_connect=mode))
        listen(world, s, asyncio.Protocol)

        async def attempt():
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            with pytest.raises(exc):
                await loop.create_connection(asyncio.Protocol, "192.0.2.2", 25)
            return loop.time() - t0

        assert world.run_until_complete(c, attempt()) == pytest.approx(at, abs=0.05)


def test_syn_retry_succeeds_when_the_link_returns():
    world, c, s = two_hosts(server_link=LinkSpec(schedule=Outages([(0, 5)])))
    listen(world, s, asyncio.Protocol)

    async def attempt():
        loop = asyncio.get_running_loop()
        await loop.create_connection(asyncio.Protocol, "192.0.2.2", 25)
        return loop.time()

    # SYNs at 0, 1, 3 are lost; the one at 7 s gets through (plus 2 x 10 ms).
    assert world.run_until_complete(c, attempt()) == pytest.approx(7.02)


def test_open_connection_is_reset_when_link_drops():
    world, c, s = two_hosts(server_link=LinkSpec(schedule=Outages([(50, 100)]), down_open="reset"))
    log: list = []
    listen(world, s, lambda: Recorder(log, "server"))
    connect(world, c, lambda: Recorder(log, "client"))
    world.run(until=60)
    assert ("server", "lost", "ConnectionResetError") in log
    assert ("client", "lost", "ConnectionResetError") in log


def test_blackholed_connection_lets_application_timeouts_fire():
    world, c, s = two_hosts(server_link=LinkSpec(schedule=Outages([(0.5, 10_000)]), down_open="blackhole"))
    world.run_until_complete(s, serve_sink("server.example", 25))

    async def session():
        client = aiosmtplib.SMTP(hostname="192.0.2.2", port=25, local_hostname="client.example", timeout=30)
        await client.connect()
        await asyncio.sleep(1)           # the link drops at 0.5 s
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(aiosmtplib.SMTPTimeoutError):
            await client.ehlo()
        return loop.time() - t0

    assert world.run_until_complete(c, session()) == pytest.approx(30.0)


def test_outbound_port_25_blocked_times_out_but_other_ports_work():
    world, c, s = two_hosts(client_link=LinkSpec(port25="blocked"))
    listen(world, s, asyncio.Protocol, port=25)
    listen(world, s, asyncio.Protocol, port=2525)
    connect(world, c, asyncio.Protocol, port=2525)

    async def attempt():
        with pytest.raises(TimeoutError):
            await asyncio.get_running_loop().create_connection(asyncio.Protocol, "192.0.2.2", 25)

    world.run_until_complete(c, attempt())


def test_port_25_interception_shows_the_isps_banner():
    world = World()
    c = world.add_host("client.example", "192.0.2.1", LinkSpec(port25_redirect="smtp.isp.example"))
    relay = world.add_host("relay.example", "192.0.2.2")
    isp = world.add_host("smtp.isp.example", "198.51.100.25")
    world.run_until_complete(relay, serve_sink("relay.example", 25))
    world.run_until_complete(isp, serve_sink("smtp.isp.example", 25))

    async def session():
        client = aiosmtplib.SMTP(hostname="192.0.2.2", port=25, local_hostname="client.example", timeout=30)
        reply = await client.connect()
        peer = client.transport.get_extra_info("peername")
        await client.quit()
        return reply.message, peer

    banner, peer = world.run_until_complete(c, session())
    assert banner.startswith("smtp.isp.example") and peer == ("192.0.2.2", 25)


def test_unknown_address_times_out_like_a_dead_route():
    world, c, s = two_hosts()

    async def attempt():
        loop = asyncio.get_running_loop()
        with pytest.raises(TimeoutError):
            await loop.create_connection(asyncio.Protocol, "203.0.113.9", 25)
        return loop.time()

    assert world.run_until_complete(c, attempt()) == SYN_GIVE_UP


def test_sessions_across_a_two_day_outage_complete_in_virtual_time():
    world, c, s = two_hosts(server_link=LinkSpec(schedule=Outages([(10, 2 * 86400)])))
    _, sink = world.run_until_complete(s, serve_sink("server.example", 25))

    async def persistent(n):
        sent = 0
        while sent < n:
            try:
                await send_message("192.0.2.2", 25, "client.example", "a@client.example",
                                   ["b@server.example"], b"Subject: x\r\n\r\nhi\r\n")
                sent += 1
            except (OSError, aiosmtplib.SMTPException):
                await asyncio.sleep(300)
        return asyncio.get_running_loop().time()

    end = world.run_until_complete(c, persistent(200))
    assert len(sink.messages) == 200 and end > 2 * 86400
