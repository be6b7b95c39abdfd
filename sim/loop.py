"""A SimPy-backed asyncio event loop: one loop object per simulated host.

SimPy is the master scheduler.  All host loops of a world share one
:class:`Scheduler`, which owns

* one *ready queue* of asyncio handles (``call_soon``), drained in batches
  by a single zero-delay SimPy event, the way asyncio runs "the batch present
  at its start";
* one *timer heap* of ``TimerHandle`` objects (``call_at``), ordered by
  ``(when, sequence)``, with cancelled timers purged as asyncio itself does
  (pitfall 6 of DESIGN.md: without the purge, 10,000 SMTP sessions leave
  ~94k dead timers behind).  Only the earliest timer has a SimPy wake-up
  scheduled, so idle time costs nothing but a heap pop.

Around each handle the running loop is set to the handle's own loop, so
``asyncio.get_running_loop()`` inside component code names the host (its
source address), and asyncio primitives stay per host.

Exceptions that escape component code (a handle that raises, a task whose
exception was never retrieved) reach :meth:`SimLoop.call_exception_handler`;
they are recorded and make :meth:`Scheduler.raise_errors` fail the run.
Nothing is swallowed.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import weakref
from asyncio import events
from collections import deque
from typing import Any, Callable

import simpy

# Mirrors asyncio.base_events: purge once more than half of at least this
# many scheduled timers are cancelled.
_MIN_SCHEDULED_TIMER_HANDLES = 100
_MIN_CANCELLED_TIMER_HANDLES_FRACTION = 0.5
# Ready batches run inside one SimPy event before yielding back to SimPy.
_MAX_BATCHES = 64


class SimulationError(RuntimeError):
    """Component code raised inside the simulation; the run is invalid."""


class _Wake:
    """The smallest object SimPy's ``Environment.step`` can process.

    ``step`` needs ``callbacks`` (a list it calls with the event) and ``_ok``.
    Using this instead of ``simpy.Event`` halves the cost of a wake-up; it
    is covered by tests/test_pins.py because it relies on SimPy 4.1's step.
    """

    __slots__ = ("callbacks", "_ok", "_value")

    def __init__(self, callback: Callable[[Any], None]) -> None:
        self.callbacks = [callback]
        self._ok = True
        self._value = None


class Arrival:
    """A timer entry for bytes (or EOF/RST) reaching a transport.

    Cheaper than an ``asyncio.TimerHandle`` (no context copy, no debug
    hooks) on the hottest path of the simulation: one per write.  It has
    the attributes the timer heap reads (``_when``, ``_loop``,
    ``_cancelled``, ``_scheduled``, ``_run``).
    """

    __slots__ = ("_when", "_loop", "_callback", "_arg", "_cancelled", "_scheduled")

    def __init__(self, when: float, loop: "SimLoop", callback: Callable[..., None], arg: Any) -> None:
        self._when = when
        self._loop = loop
        self._callback = callback
        self._arg = arg
        self._cancelled = False
        self._scheduled = True

    def _run(self) -> None:
        try:
            if self._arg is None:
                self._callback()
            else:
                self._callback(self._arg)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:  # noqa: BLE001 - reported, never swallowed
            self._loop.call_exception_handler({
                "message": f"Exception in callback {self._callback!r}",
                "exception": exc,
            })


class Scheduler:
    """The bridge between asyncio handles and one ``simpy.Environment``."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self._ready: deque[asyncio.Handle] = deque()
        self._drain_pending = False
        self._timers: list[tuple[float, int, asyncio.TimerHandle]] = []
        self._timer_seq = itertools.count()
        self._cancelled_timers = 0
        self._wakeups: list[float] = []          # times of pending timer wake-ups
        self.errors: list[dict[str, Any]] = []
        self.on_error: Callable[[SimLoop, dict[str, Any]], None] | None = None

    # -- ready queue -------------------------------------------------------
    def push_ready(self, handle: asyncio.Handle) -> None:
        self._ready.append(handle)
        if not self._drain_pending:
            self._drain_pending = True
            self.env.schedule(_Wake(self._drain))  # type: ignore[arg-type]

    def _drain(self, _event: Any) -> None:
        self._drain_pending = False
        self._run_ready()

    def _run_ready(self) -> None:
        """Run ready handles batch by batch, each batch being the handles
        present at its start (asyncio's rule), all at the current instant.

        Running several batches inside one SimPy event saves an event per
        batch; after ``_MAX_BATCHES`` (a task spinning on ``sleep(0)``) the
        rest goes back to SimPy so other events at this instant get a turn.
        """
        ready = self._ready
        current = None
        set_loop = events._set_running_loop
        try:
            for _ in range(_MAX_BATCHES):
                if not ready:
                    break
                for _ in range(len(ready)):
                    handle = ready.popleft()
                    if handle._cancelled:
                        continue
                    loop = handle._loop
                    if loop is not current:
                        set_loop(loop)
                        current = loop
                    handle._run()
        finally:
            set_loop(None)
            if ready and not self._drain_pending:
                self._drain_pending = True
                self.env.schedule(_Wake(self._drain))  # type: ignore[arg-type]

    # -- timers ------------------------------------------------------------
    def push_timer(self, timer: "asyncio.TimerHandle | Arrival") -> None:
        when = timer._when
        heapq.heappush(self._timers, (when, next(self._timer_seq), timer))
        if not self._wakeups or when < self._wakeups[0]:
            self._schedule_wakeup(when)

    def _schedule_wakeup(self, when: float) -> None:
        heapq.heappush(self._wakeups, when)
        delay = max(0.0, when - self.env.now)
        self.env.schedule(_Wake(self._fire_timers), delay=delay)  # type: ignore[arg-type]

    def timer_cancelled(self) -> None:
        self._cancelled_timers += 1
        n = len(self._timers)
        if (n > _MIN_SCHEDULED_TIMER_HANDLES
                and self._cancelled_timers > n * _MIN_CANCELLED_TIMER_HANDLES_FRACTION):
            self._purge_cancelled()

    def _purge_cancelled(self) -> None:
        live = []
        for entry in self._timers:
            if entry[2]._cancelled:
                entry[2]._scheduled = False
            else:
                live.append(entry)
        heapq.heapify(live)
        self._timers = live
        self._cancelled_timers = 0

    def _fire_timers(self, _event: Any) -> None:
        now = self.env.now
        wakeups = self._wakeups
        while wakeups and wakeups[0] <= now:
            heapq.heappop(wakeups)
        timers = self._timers
        set_loop = events._set_running_loop
        current = None
        try:
            while timers and timers[0][0] <= now:
                _, _, timer = heapq.heappop(timers)
                timer._scheduled = False
                if timer._cancelled:
                    self._cancelled_timers -= 1
                    continue
                loop = timer._loop
                if loop is not current:
                    set_loop(loop)
                    current = loop
                timer._run()
        finally:
            if timers and (not wakeups or timers[0][0] < wakeups[0]):
                self._schedule_wakeup(timers[0][0])
            if current is not None:
                set_loop(None)
        # What the timers made ready runs now, not one SimPy event later.
        if self._ready:
            self._run_ready()

    @property
    def pending_timers(self) -> int:
        """Timer entries held (live and not yet purged); for tests."""
        return len(self._timers)

    def record_error(self, loop: "SimLoop", context: dict[str, Any]) -> None:
        self.errors.append(context)
        if self.on_error is not None:
            self.on_error(loop, context)

    def raise_errors(self) -> None:
        if self.errors:
            ctx = self.errors[0]
            exc = ctx.get("exception")
            msg = ctx.get("message", "error in component code")
            raise SimulationError(f"{msg}: {exc!r}" if exc else msg) from exc


class SimLoop(asyncio.BaseEventLoop):
    """The asyncio loop of one simulated host.

    Scheduling goes to the shared :class:`Scheduler`; connections, servers
    and name lookups go to the world's network through ``self.host`` (set by
    :class:`sim.world.World`).  ``run_forever``/``run_until_complete`` are
    not used: the world drives SimPy, and SimPy drives every loop.
    """

    def __init__(self, scheduler: Scheduler, name: str) -> None:
        self.scheduler = scheduler     # before super(): its __init__ schedules a call
        self.name = name
        super().__init__()
        self.host: Any = None           # sim.world.Host, set by the world
        self._task_seq = itertools.count()
        self._task_order: "weakref.WeakKeyDictionary[asyncio.Task, int]" = (
            weakref.WeakKeyDictionary())

    def __repr__(self) -> str:
        return f"<SimLoop {self.name}>"

    # -- time and scheduling ------------------------------------------------
    def time(self) -> float:
        return self.scheduler.env.now

    def call_soon(self, callback, *args, context=None):  # type: ignore[override]
        handle = events.Handle(callback, args, self, context)
        self.scheduler.push_ready(handle)
        return handle

    def _call_soon(self, callback, args, context):  # used by BaseEventLoop internals
        handle = events.Handle(callback, args, self, context)
        self.scheduler.push_ready(handle)
        return handle

    def call_soon_threadsafe(self, callback, *args, context=None):  # type: ignore[override]
        return self.call_soon(callback, *args, context=context)

    def call_at(self, when, callback, *args, context=None):  # type: ignore[override]
        timer = events.TimerHandle(when, callback, args, self, context)
        timer._scheduled = True
        self.scheduler.push_timer(timer)
        return timer

    def call_later(self, delay, callback, *args, context=None):  # type: ignore[override]
        return self.call_at(self.time() + delay, callback, *args, context=context)

    def _timer_handle_cancelled(self, handle) -> None:
        if handle._scheduled:
            self.scheduler.timer_cancelled()

    def is_running(self) -> bool:
        return True

    def __del__(self) -> None:
        # A SimLoop holds no OS resources; BaseEventLoop.__del__ would only
        # warn about an "unclosed event loop".
        pass

    def create_task(self, coro, *, name=None, context=None):  # type: ignore[override]
        task = super().create_task(coro, name=name, context=context)
        self._task_order[task] = next(self._task_seq)
        return task

    def tasks_in_creation_order(self) -> list[asyncio.Task]:
        """Unfinished tasks of this loop, oldest first (stable, pitfall 7)."""
        order = self._task_order
        return sorted((t for t in list(order.keys()) if not t.done()), key=order.__getitem__)

    # -- executor: inline (pitfall 1) -----------------------------------------
    def run_in_executor(self, executor, func, *args):  # type: ignore[override]
        future = self.create_future()
        try:
            future.set_result(func(*args))
        except BaseException as exc:  # noqa: BLE001 - delivered to the awaiting code
            future.set_exception(exc)
        return future

    # -- network: delegated to the host's network interface ------------------
    async def getaddrinfo(self, host, port, *, family=0, type=0, proto=0, flags=0):  # type: ignore[override]
        return self.host.network.getaddrinfo(host, port)

    async def create_connection(self, protocol_factory, host=None, port=None, *,  # type: ignore[override]
                                ssl=None, local_addr=None, server_hostname=None, **kw):
        if ssl:
            raise NotImplementedError("TLS is not simulated; use plain SMTP in scenarios")
        return await self.host.network.open_connection(self.host, protocol_factory, host, port)

    async def create_server(self, protocol_factory, host=None, port=None, **kw):  # type: ignore[override]
        if kw.get("ssl"):
            raise NotImplementedError("TLS is not simulated")
        return self.host.network.listen(self.host, protocol_factory, host, port)

    # -- errors -------------------------------------------------------------
    def call_exception_handler(self, context: dict[str, Any]) -> None:  # type: ignore[override]
        self.scheduler.record_error(self, context)

    # -- lifecycle --------------------------------------------------------------
    def run_forever(self):  # pragma: no cover - guard against misuse
        raise RuntimeError("a SimLoop is driven by its World; call world.run()")

    def run_until_complete(self, future):  # pragma: no cover - guard against misuse
        raise RuntimeError("a SimLoop is driven by its World; use world.run_until_complete()")
