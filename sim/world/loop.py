"""A SimPy-backed asyncio event loop: one loop object per simulated host.

SimPy is the master scheduler.  All host loops of a world share one
:class:`Scheduler`, which owns

* one *ready queue* of asyncio handles (``call_soon``), drained in batches
  by a single zero-delay SimPy event, the way asyncio runs "the batch present
  at its start"; what a running handle or timer makes ready runs in the same
  SimPy event, so a drain event is scheduled only for handles made ready
  from outside (a SimPy process, the world);
* one *timer heap* of ``TimerHandle`` objects (``call_at``), ordered by
  ``(when, sequence)``, with cancelled timers purged as asyncio itself does
  (pitfall 6 of DESIGN.md: without the purge, 10,000 SMTP sessions leave
  ~94k dead timers behind).  Only the earliest timer has a SimPy wake-up
  scheduled, so idle time costs nothing but a heap pop, and an SMTP
  session costs one SimPy event per instant at which bytes arrive.

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
import contextlib
import contextvars
import heapq
import inspect
import itertools
import weakref
from asyncio import events, format_helpers
from collections import deque
from typing import Any, Callable

import simpy

heappush = heapq.heappush
heappop = heapq.heappop
_set_running_loop = events._set_running_loop
_NORMAL = simpy.core.NORMAL
_Handle = events.Handle
_TimerHandle = events.TimerHandle
_new = object.__new__
_copy_context = contextvars.copy_context

# The hot paths read the clock as ``env._now`` (what the ``now`` property
# returns) to save a call each time: ~60 per SMTP session.  A timer wake-up
# goes straight onto SimPy's heap as ``Environment.schedule`` puts it there
# (the same ``(now + delay, priority, next(eid), event)`` entry, so the same
# order), one Python call less per wake-up (~15 per SMTP session).
if getattr(simpy.Environment(initial_time=1.5), "_now", None) != 1.5:  # pragma: no cover
    raise ImportError("simpy.Environment no longer keeps its clock in _now")
if "heappush(self._queue, (self._now + delay, priority, next(self._eid), event))" not in \
        inspect.getsource(simpy.Environment.schedule):  # pragma: no cover
    raise ImportError("simpy.Environment.schedule no longer pushes (now + delay, priority, "
                      "next(eid), event) onto _queue")

# SimLoop.call_soon/call_at fill these slots themselves (Handle.__init__ in
# Python 3.11-3.13); fail loudly if asyncio's handles change shape.
if (tuple(_Handle.__slots__) != ("_callback", "_args", "_cancelled", "_loop", "_source_traceback",
                                 "_repr", "__weakref__", "_context")
        or tuple(_TimerHandle.__slots__) != ("_scheduled", "_when")):  # pragma: no cover
    raise ImportError("asyncio.Handle/TimerHandle slots differ from what sim.world.loop fills in: "
                      f"{_Handle.__slots__} {_TimerHandle.__slots__}")

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


def _report_handle_error(handle: asyncio.Handle, exc: BaseException) -> None:
    """What ``Handle._run`` reports when its callback raises."""
    cb = format_helpers._format_callback_source(handle._callback, handle._args)
    context = {"message": f"Exception in callback {cb}", "exception": exc, "handle": handle}
    if handle._source_traceback:
        context["source_traceback"] = handle._source_traceback
    handle._loop.call_exception_handler(context)


@contextlib.contextmanager
def outside_running_loop():
    """Drive the simulation from code that may itself run in a real loop
    (a Jupyter cell, a coroutine): whatever loop the caller had running is
    running again afterwards.  Inside, the scheduler sets each host's loop
    around its handles and clears it between them."""
    saved = events._get_running_loop()
    try:
        yield
    finally:
        _set_running_loop(saved)


class Scheduler:
    """The bridge between asyncio handles and one ``simpy.Environment``."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self._ready: deque[asyncio.Handle] = deque()
        # A drain event is in SimPy's queue.
        self._drain_pending = False
        # No new drain event is needed: one is pending, or the scheduler is
        # running handles right now and will run whatever becomes ready
        # before it returns to SimPy.  Without this, every call_soon made
        # by a running handle scheduled a SimPy event that found nothing
        # to do (about half of all SimPy events in an SMTP session).
        self._hold = False
        self._timers: list[tuple[float, int, asyncio.TimerHandle]] = []
        self._timer_seq = itertools.count()
        self._cancelled_timers = 0
        self._wakeups: list[float] = []          # times of pending timer wake-ups
        self._fire_cb = self._fire_timers         # bound once, not per wake-up
        self.errors: list[dict[str, Any]] = []
        self.on_error: Callable[[SimLoop, dict[str, Any]], None] | None = None

    # -- ready queue -------------------------------------------------------
    def push_ready(self, handle: asyncio.Handle) -> None:
        self._ready.append(handle)
        if not self._hold:
            self._hold = self._drain_pending = True
            self.env.schedule(_Wake(self._drain))  # type: ignore[arg-type]

    def _drain(self, _event: Any) -> None:
        self._drain_pending = False
        self._run_ready(None)

    def _run_ready(self, current: "SimLoop | None") -> None:
        """Run ready handles batch by batch, each batch being the handles
        present at its start (asyncio's rule), all at the current instant.

        ``current`` is the running loop the caller left set (or ``None``);
        on return no loop is running.  Running several batches inside one
        SimPy event saves an event per batch; after ``_MAX_BATCHES`` (a task
        spinning on ``sleep(0)``) the rest goes back to SimPy so other
        events at this instant get a turn.
        """
        ready = self._ready
        set_loop = _set_running_loop
        self._hold = True                   # what the handles make ready runs here
        try:
            for _ in range(_MAX_BATCHES):
                n = len(ready)
                if not n:
                    break
                for _ in range(n):
                    handle = ready.popleft()
                    if handle._cancelled:
                        continue
                    loop = handle._loop
                    if loop is not current:
                        set_loop(loop)
                        current = loop
                    # Handle._run inlined (one frame less per handle).
                    try:
                        handle._context.run(handle._callback, *handle._args)
                    except (SystemExit, KeyboardInterrupt):
                        raise
                    except BaseException as exc:  # noqa: BLE001 - reported, never swallowed
                        _report_handle_error(handle, exc)
        finally:
            self._release(current)

    def _release(self, current: "SimLoop | None") -> None:
        """End of a run of handles: no loop is running any more, and what
        is still ready (after ``_MAX_BATCHES``) waits for a drain event."""
        if current is not None:
            _set_running_loop(None)
        if self._ready and not self._drain_pending:
            self._drain_pending = True
            self.env.schedule(_Wake(self._drain))  # type: ignore[arg-type]
        self._hold = self._drain_pending

    # -- timers ------------------------------------------------------------
    def push_timer(self, timer: "asyncio.TimerHandle | Arrival") -> None:
        when = timer._when
        heappush(self._timers, (when, next(self._timer_seq), timer))
        wakeups = self._wakeups
        if not wakeups or when < wakeups[0]:
            self._schedule_wakeup(when)

    def _schedule_wakeup(self, when: float) -> None:
        heappush(self._wakeups, when)
        env = self.env
        now = env._now
        delay = when - now
        # Environment.schedule inlined (checked at import); the wake-up's
        # slots filled without a constructor call.
        wake = _new(_Wake)
        wake.callbacks = [self._fire_cb]
        wake._ok = True
        wake._value = None
        heappush(env._queue, (now + (delay if delay > 0.0 else 0.0), _NORMAL, next(env._eid), wake))

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
        """Run every timer due now, then what they made ready, in one SimPy
        event (asyncio's order: due timers join the ready batch)."""
        now = self.env._now
        wakeups = self._wakeups
        while wakeups and wakeups[0] <= now:
            heappop(wakeups)
        timers = self._timers
        set_loop = _set_running_loop
        current = None
        self._hold = True                   # what the timers make ready runs here
        try:
            while timers and timers[0][0] <= now:
                timer = heappop(timers)[2]
                timer._scheduled = False
                if timer._cancelled:
                    self._cancelled_timers -= 1
                    continue
                loop = timer._loop
                if loop is not current:
                    set_loop(loop)
                    current = loop
                timer._run()
        except BaseException:               # only SystemExit/KeyboardInterrupt get here
            self._release(current)
            raise
        finally:
            if timers and (not wakeups or timers[0][0] < wakeups[0]):
                self._schedule_wakeup(timers[0][0])
        # What the timers made ready runs now, in this same SimPy event.
        if self._ready:
            self._run_ready(current)
        else:
            self._release(current)

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
    :class:`sim.world.core.World`).  ``run_forever``/``run_until_complete`` are
    not used: the world drives SimPy, and SimPy drives every loop.
    """

    def __init__(self, scheduler: Scheduler, name: str) -> None:
        self.scheduler = scheduler     # before super(): its __init__ schedules a call
        self.name = name
        self._env = scheduler.env
        self._push_ready = scheduler.push_ready
        self._push_timer = scheduler.push_timer
        super().__init__()
        self.host: Any = None           # sim.world.core.Host, set by the world
        # Weak references to this loop's tasks in creation order (pitfall 7:
        # never WeakSet order); compacted when it doubles.  Cheaper than a
        # WeakKeyDictionary, whose insert is Python code.
        self._tasks: list[weakref.ref[asyncio.Task]] = []
        self._tasks_limit = 64

    def __repr__(self) -> str:
        return f"<SimLoop {self.name}>"

    # -- time and scheduling ------------------------------------------------
    # call_soon/call_at fill the handles' slots directly instead of calling
    # Handle.__init__, which costs a frame and a get_debug() call per
    # handle (one per task step and future callback: ~30 per SMTP session).
    # In debug mode the real constructors run, so handles keep their
    # creation tracebacks.  The slot layout is checked at import.
    def time(self) -> float:
        return self._env._now

    def call_soon(self, callback, *args, context=None):  # type: ignore[override]
        if self._debug:
            handle = _Handle(callback, args, self, context)
        else:
            handle = _new(_Handle)
            handle._context = _copy_context() if context is None else context
            handle._loop = self
            handle._callback = callback
            handle._args = args
            handle._cancelled = False
            handle._repr = None
            handle._source_traceback = None
        self._push_ready(handle)
        return handle

    def _call_soon(self, callback, args, context):  # used by BaseEventLoop internals
        return self.call_soon(callback, *args, context=context)

    def call_soon_threadsafe(self, callback, *args, context=None):  # type: ignore[override]
        return self.call_soon(callback, *args, context=context)

    def call_at(self, when, callback, *args, context=None):  # type: ignore[override]
        if self._debug:
            timer = _TimerHandle(when, callback, args, self, context)
        else:
            timer = _new(_TimerHandle)
            timer._context = _copy_context() if context is None else context
            timer._loop = self
            timer._callback = callback
            timer._args = args
            timer._cancelled = False
            timer._repr = None
            timer._source_traceback = None
            timer._when = when
        timer._scheduled = True
        self._push_timer(timer)
        return timer

    def call_later(self, delay, callback, *args, context=None):  # type: ignore[override]
        return self.call_at(self._env._now + delay, callback, *args, context=context)

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
        tasks = self._tasks
        tasks.append(weakref.ref(task))
        if len(tasks) > self._tasks_limit:
            live = self.tasks_in_creation_order()
            self._tasks = [weakref.ref(t) for t in live]
            self._tasks_limit = 2 * len(live) + 64
        return task

    def tasks_in_creation_order(self) -> list[asyncio.Task]:
        """Unfinished tasks of this loop, oldest first (stable, pitfall 7)."""
        return [t for r in self._tasks if (t := r()) is not None and not t.done()]

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
