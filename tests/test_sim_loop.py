"""The SimPy-backed asyncio loop: time, scheduling, per-host loops, errors,
shutdown order, and the pitfalls DESIGN.md lists (1, 2, 6, 7)."""
from __future__ import annotations

import asyncio
import socket

import pytest

from mta.smtp.basic import send_message, serve_sink
from mta.events import ComponentError
from sim.world.loop import SimulationError
from sim.world.core import World


def test_time_is_simulated_and_sleep_costs_no_wall_time(world):
    host = world.add_host("a.example", "192.0.2.1")

    async def nap():
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.sleep(5 * 86400)
        return t0, loop.time()

    assert world.run_until_complete(host, nap()) == (0.0, 5 * 86400.0)


def test_call_soon_and_call_at_order(world):
    host = world.add_host("a.example", "192.0.2.1")
    order: list[str] = []

    async def go():
        loop = asyncio.get_running_loop()
        loop.call_at(10.0, order.append, "t10-first")
        loop.call_later(5.0, order.append, "t5")
        loop.call_at(10.0, order.append, "t10-second")
        cancelled = loop.call_at(7.0, order.append, "never")
        cancelled.cancel()
        loop.call_soon(order.append, "soon1")
        loop.call_soon(order.append, "soon2")
        await asyncio.sleep(20)

    world.run_until_complete(host, go())
    assert order == ["soon1", "soon2", "t5", "t10-first", "t10-second"]


def test_running_loop_is_the_hosts_own(world):
    a = world.add_host("a.example", "192.0.2.1")
    b = world.add_host("b.example", "192.0.2.2")

    async def which():
        return asyncio.get_running_loop()

    assert world.run_until_complete(a, which()) is a.loop
    assert world.run_until_complete(b, which()) is b.loop
    assert asyncio._get_running_loop() is None  # cleared between batches


def test_protocol_factory_runs_on_the_server_hosts_loop(world):
    """Pitfall 2: aiosmtpd's make_loop() would silently create a real loop
    if the factory ran with no running loop."""
    client = world.add_host("c.example", "192.0.2.1")
    server = world.add_host("s.example", "192.0.2.2")
    seen: list[object] = []

    class Proto(asyncio.Protocol):
        def __init__(self):
            seen.append(asyncio.get_running_loop())

        def connection_made(self, transport):
            seen.append(transport.get_extra_info("peername"))

    async def listen():
        await asyncio.get_running_loop().create_server(Proto, port=7)

    async def connect():
        tr, _ = await asyncio.get_running_loop().create_connection(asyncio.Protocol, "192.0.2.2", 7)
        return tr.get_extra_info("sockname")

    world.run_until_complete(server, listen())
    sockname = world.run_until_complete(client, connect())
    assert seen[0] is server.loop
    assert seen[1] == sockname and sockname[0] == "192.0.2.1"


def test_run_in_executor_runs_inline(world):
    host = world.add_host("a.example", "192.0.2.1")

    async def go():
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(None, lambda: 6 * 7)
        assert fut.done()
        return await fut

    assert world.run_until_complete(host, go()) == 42


def test_explicit_hostnames_never_touch_real_dns(monkeypatch):
    """Pitfall 1: with hostnames passed explicitly, no getfqdn happens."""
    def forbidden(*a, **k):
        raise AssertionError("real DNS lookup inside the simulation")

    monkeypatch.setattr(socket, "getfqdn", forbidden)
    monkeypatch.setattr(socket, "gethostbyname", forbidden)
    world = World()
    sender = world.add_host("sender.example", "192.0.2.1")
    mx = world.add_host("mx.example", "192.0.2.25")
    world.run_until_complete(mx, serve_sink("mx.example", 25))
    transcript = world.run_until_complete(sender, send_message(
        "mx.example", 25, "sender.example", "a@sender.example", ["b@mx.example"], b"Subject: x\r\n\r\nhi\r\n"))
    assert [c for c, _, _ in transcript] == ["CONNECT", "EHLO", "MAIL", "RCPT", "DATA", "QUIT"]


def test_exception_escaping_component_code_fails_the_run_loudly():
    world = World()   # not the fixture: this world is meant to fail
    host = world.add_host("a.example", "192.0.2.1")

    def boom():
        raise ValueError("component bug")

    async def go():
        asyncio.get_running_loop().call_later(3, boom)
        await asyncio.sleep(10)

    world.spawn(host, go())
    with pytest.raises(SimulationError, match="component bug"):
        world.run(until=100)
    errors = [e for e in world.events if isinstance(e, ComponentError)]
    assert len(errors) == 1 and errors[0].t == 3.0 and "component bug" in errors[0].error
    assert world.now() == 3.0  # stopped at the error, not at the horizon


def test_shutdown_cancels_tasks_in_creation_order(world):
    """Pitfall 7: all_tasks() is a WeakSet; shutdown must not follow it."""
    hosts = [world.add_host(f"h{i}.example", f"192.0.2.{i + 1}") for i in range(3)]
    order: list[str] = []

    async def sleeper(tag):
        try:
            await asyncio.sleep(1e9)
        except asyncio.CancelledError:
            order.append(tag)
            raise

    for i in range(5):
        for h in reversed(hosts):
            world.spawn(h, sleeper(f"{h.name}#{i}"))
    world.run(until=1)
    world.shutdown()
    expected = [f"{h.name}#{i}" for h in sorted(hosts, key=lambda h: h.name) for i in range(5)]
    assert order == expected


def _many_sessions(n: int) -> World:
    world = World()
    sender = world.add_host("sender.example", "192.0.2.1")
    mx = world.add_host("mx.example", "192.0.2.25")
    world.run_until_complete(mx, serve_sink("mx.example", 25))

    async def go():
        for _ in range(n):
            await send_message("192.0.2.25", 25, "sender.example", "a@sender.example",
                               ["b@mx.example"], b"Subject: x\r\n\r\nhi\r\n")
            world.max_timers = max(getattr(world, "max_timers", 0), world.scheduler.pending_timers)

    world.run_until_complete(sender, go())
    return world


def test_cancelled_timers_are_purged_1000_sessions():
    """Pitfall 6: every command leaves a cancelled timer behind."""
    world = _many_sessions(1000)
    assert world.max_timers < 300          # unpurged, this grows ~9 per session
    assert len(world.env._queue) < 20      # SimPy's heap holds wake-ups only


@pytest.mark.slow
def test_cancelled_timers_are_purged_10000_sessions():
    world = _many_sessions(10_000)
    assert world.max_timers < 300
    assert len(world.env._queue) < 20


def test_a_world_run_from_inside_a_real_loop_gives_the_callers_loop_back():
    """Jupyter runs cells inside a running asyncio loop: after a simulated
    run, the cell's own loop must still be the running one (it used to be
    cleared, and the next cell hung)."""
    async def cell():
        outer = asyncio.get_running_loop()
        world = World(seed=1)
        host = world.add_host("a.example", "192.0.2.1")

        async def inner():
            await asyncio.sleep(60)
            return asyncio.get_running_loop()

        assert world.run_until_complete(host, inner()) is host.loop
        assert asyncio.get_running_loop() is outer
        world.run(until=3600)
        assert asyncio.get_running_loop() is outer
        world.finish()
        assert asyncio.get_running_loop() is outer
        await asyncio.sleep(0)          # the outer loop still works
        return True

    assert asyncio.run(cell())
