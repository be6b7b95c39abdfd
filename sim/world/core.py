"""The simulated world: one SimPy environment, hosts, links, DNS and a log.

A :class:`World` owns one ``simpy.Environment``, one :class:`Scheduler`
shared by every host's :class:`SimLoop`, the :class:`Network`, the event
sink and the simulated resolver.  Everything random inside it is derived
from the run's seed by name (``random.Random("<seed>:<purpose>:<name>")``,
which hashes with SHA-512 and so does not depend on PYTHONHASHSEED), so a run
is a pure function of its inputs and seed.

Typical use::

    world = World(seed=7, scenario="demo")
    mx = world.add_host("mx.example", "192.0.2.10", link=LinkSpec(...))
    world.set_zones(zone_text)
    world.spawn(mx, serve(mx))
    world.run(until=2 * 86400)
    world.finish()
"""
from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import random
from dataclasses import dataclass
from typing import Any, Callable, Coroutine

import simpy
from simpy.core import StopSimulation

from mta.context import HostContext
from mta.events import ComponentError, Event
from mta.events.sinks import MemorySink
from sim.events import LinkDown, LinkUp, RunEnded, RunStarted
from sim.world.loop import Scheduler, SimLoop, SimulationError, _Wake, outside_running_loop
from sim.world.network import Link, LinkSpec, Network
from sim.world.schedules import AlwaysUp

__all__ = ["World", "Host", "SimulationError"]

# The cyclic collector's thresholds while SimPy runs.  With the defaults
# (700, 10, 10) a run keeps re-walking everything it has kept (the event log,
# the queues): the 100-domain ISP world spent 10% of its CPU time in the
# collector, two thirds of it in 11 full collections.  Young collections
# 14 times rarer and middle ones twice as rare leave about one full
# collection in that run; what is collected and freed stays the same
# (reference counting frees everything that is not in a cycle at once).
GC_THRESHOLDS = (10_000, 20, 10)


@contextlib.contextmanager
def _fewer_collections():
    """Raise the collector's thresholds (never lower them) while the
    simulation runs, and restore the caller's afterwards."""
    saved = gc.get_threshold()
    gc.set_threshold(*(max(a, b) for a, b in zip(saved, GC_THRESHOLDS)))
    try:
        yield
    finally:
        gc.set_threshold(*saved)


class Host:
    """A simulated machine: a name, an address, a link and its own loop."""

    def __init__(self, world: "World", name: str, ip: str, link: LinkSpec) -> None:
        self.world = world
        self.name = name
        self.ip = ip
        self.network = world.network
        self.link = Link(name, link)
        self.loop = SimLoop(world.scheduler, name)
        self.loop.host = self
        self.ctx = HostContext(
            hostname=name,
            sink=world.sink,
            resolver=world.resolver,
            rng=world.rng_for("host", name),
            clock=world.now,
        )
        self._ports = itertools.count(49152)

    def __repr__(self) -> str:
        return f"<Host {self.name} {self.ip}>"

    def next_port(self) -> int:
        """The next ephemeral source port (deterministic per host)."""
        return next(self._ports)


class World:
    """A deterministic simulated world; see the module docstring."""

    def __init__(self, seed: int = 0, scenario: str = "adhoc", sink: Any = None) -> None:
        self.seed = int(seed)
        self.scenario = scenario
        self.env = simpy.Environment()
        self.scheduler = Scheduler(self.env)
        self.scheduler.on_error = self._on_component_error
        self.network = Network(self.now)
        self.sink = sink if sink is not None else MemorySink()
        self.resolver: Any = None
        self.hosts: dict[str, Host] = {}
        self._link_up: dict[str, list[Callable[[], None]]] = {}
        self._stopping = False
        self.sink.emit(RunStarted(t=0.0, host="world", scenario=scenario, seed=self.seed))

    # -- basics -------------------------------------------------------------------
    def now(self) -> float:
        """Simulated seconds since the start (every event's stamp)."""
        # env._now is what the env.now property returns (sim.world.loop checks
        # it at import); ~20 calls per SMTP session, each a property call less.
        return self.env._now

    def rng_for(self, purpose: str, name: str) -> random.Random:
        """An independent random source for one purpose, derived from the seed."""
        return random.Random(f"{self.seed}:{purpose}:{name}")

    @property
    def events(self) -> list[Event]:
        return self.sink.events

    # -- building -------------------------------------------------------------------
    def add_host(self, name: str, ip: str, link: LinkSpec | None = None) -> Host:
        """Add a host attached by ``link`` (default: always up, 5 ms)."""
        host = Host(self, name, ip, link or LinkSpec())
        self.network.add_host(host)
        self.hosts[name] = host
        schedule = host.link.spec.schedule
        if not isinstance(schedule, AlwaysUp):
            if not host.link.up:
                self.sink.emit(LinkDown(t=0.0, host=name, link=host.link.name))
            self.env.process(self._run_schedule(host))
        return host

    def host(self, name: str) -> Host:
        return self.hosts[name]

    def set_zones(self, zone_text: str, **resolver_options: Any) -> Any:
        """Serve DNS from zone-file text (several zones, each under $ORIGIN)."""
        from sim.world.dns import SimResolver  # local import: DNS is optional for bare tests

        self.resolver = SimResolver.from_text(zone_text, **resolver_options)
        for host in self.hosts.values():
            host.ctx.resolver = self.resolver
        return self.resolver

    def on_link_up(self, host: str, callback: Callable[[], None]) -> None:
        """Call ``callback`` each time ``host``'s link comes up, right after
        the ``LinkUp`` event is logged.  Actors that react to the network
        subscribe here, never to the log: the sink only records."""
        self._link_up.setdefault(host, []).append(callback)

    def _run_schedule(self, host: Host):
        rng = self.rng_for("link", host.name)
        for when, up in host.link.spec.schedule.transitions(rng):
            if when > self.env.now:
                yield self.env.timeout(when - self.env.now)
            if host.link.up != up:
                self.network.set_link_state(host, up)
                kind = LinkUp if up else LinkDown
                self.sink.emit(kind(t=self.env.now, host=host.name, link=host.link.name))
                if up:
                    for callback in self._link_up.get(host.name, ()):
                        callback()

    # -- running --------------------------------------------------------------------
    def spawn(self, host: Host, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task:
        """Run ``coro`` as a task on ``host``'s loop."""
        return host.loop.create_task(coro, name=name)

    def run(self, until: float) -> None:
        """Advance simulated time to ``until``; raise if component code raised."""
        if until > self.env.now:
            with outside_running_loop(), _fewer_collections():
                self.env.run(until=until)
        self.scheduler.raise_errors()

    def run_until_complete(self, host: Host, coro: Coroutine[Any, Any, Any],
                           limit: float = 30 * 86400.0) -> Any:
        """Run ``coro`` on ``host`` until it finishes (at most ``limit``
        simulated seconds from now) and return its result."""
        task = self.spawn(host, coro)
        done = self.env.event()
        task.add_done_callback(lambda _t: done.succeed() if not done.triggered else None)
        with outside_running_loop(), _fewer_collections():
            self.env.run(until=self.env.any_of([done, self.env.timeout(limit)]))
        self.scheduler.raise_errors()
        if not task.done():
            task.cancel()
            self._settle()
            raise TimeoutError(f"task did not finish within {limit} simulated seconds")
        return task.result()

    def _settle(self, max_steps: int = 100_000) -> None:
        """Process everything due at the current instant."""
        steps = 0
        with outside_running_loop():
            while self.env.peek() <= self.env.now and steps < max_steps:
                self.env.step()
                steps += 1

    def _on_component_error(self, loop: SimLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        where = context.get("message", "")
        self.sink.emit(ComponentError(t=self.env.now, host=loop.name, where=str(where),
                                      error=repr(exc) if exc is not None else ""))
        if not self._stopping:
            self._stopping = True

            def stop(_event: Any) -> None:
                self._stopping = False
                raise StopSimulation(None)

            self.env.schedule(_Wake(stop), priority=simpy.core.URGENT)  # type: ignore[arg-type]

    def shutdown(self) -> None:
        """Cancel every unfinished task, hosts by name, tasks oldest first
        (pitfall 7: never in WeakSet order), and let the cancellations run."""
        for name in sorted(self.hosts):
            for task in self.hosts[name].loop.tasks_in_creation_order():
                task.cancel()
        self._settle()
        for name in sorted(self.hosts):
            self.hosts[name].loop._ready.clear()

    def finish(self) -> None:
        """Shut down and write the closing event."""
        self.shutdown()
        self.sink.emit(RunEnded(t=self.env.now, host="world"))
        self.scheduler.raise_errors()
