"""Pitfall 10: the simulated loop relies on a few private details of SimPy
and asyncio, and the components on details of aiosmtpd/aiosmtplib.  The
versions are pinned in pyproject.toml; these tests fail loudly, naming the
detail, if an upgrade moves any of them."""
from __future__ import annotations

import asyncio
import inspect
from asyncio import base_events, events
from importlib.metadata import version

import simpy

from sim.world.loop import _Wake


def test_pinned_versions():
    assert version("simpy") == "4.1.2"
    assert version("aiosmtpd") == "1.4.6"
    assert version("aiosmtplib") == "5.1.3"


def test_simpy_schedule_pushes_the_entry_the_loop_pushes_itself():
    # sim.world.loop._schedule_wakeup puts wake-ups on env._queue directly.
    assert "heappush(self._queue, (self._now + delay, priority, next(self._eid), event))" in \
        inspect.getsource(simpy.Environment.schedule)
    env = simpy.Environment()
    assert env._queue == [] and next(env._eid) == 0


def test_simpy_step_processes_any_object_with_callbacks_and_ok():
    env = simpy.Environment()
    hits = []
    env.schedule(_Wake(hits.append), delay=2)  # type: ignore[arg-type]
    env.run()
    assert env.now == 2 and len(hits) == 1
    assert "callbacks, event.callbacks = event.callbacks, None" in inspect.getsource(simpy.Environment.step)


def test_asyncio_private_hooks_exist():
    assert callable(events._set_running_loop)
    loop = asyncio.new_event_loop()
    h = events.TimerHandle(1.0, print, (), loop)
    loop.close()
    assert hasattr(h, "_when") and hasattr(h, "_scheduled") and hasattr(h, "_cancelled")
    assert hasattr(events.Handle, "_run")
    assert hasattr(base_events.BaseEventLoop, "_timer_handle_cancelled")
    # TimerHandle.cancel() reports to the loop only when _scheduled is set.
    assert "_timer_handle_cancelled" in inspect.getsource(events.TimerHandle.cancel)


def test_aiosmtpd_keeps_command_size_limits_at_class_level():
    """Pitfall 9: still shared by every server in a process in this version,
    which is why mta.smtp.server makes them per instance."""
    from aiosmtpd.smtp import SMTP
    assert "command_size_limits" in SMTP.__dict__


def test_simpy_keeps_its_clock_in_now():
    """sim.world.loop reads ``env._now`` on its hot paths (cheaper than the property)."""
    env = simpy.Environment(initial_time=2.5)
    assert env._now == 2.5 == env.now


def test_asyncio_handle_slot_layout_that_sim_loop_fills_in():
    """sim.world.loop builds Handle/TimerHandle objects by filling their slots
    directly; a new slot in a later Python would be left unset."""
    assert tuple(events.Handle.__slots__) == (
        "_callback", "_args", "_cancelled", "_loop", "_source_traceback", "_repr", "__weakref__",
        "_context")
    assert tuple(events.TimerHandle.__slots__) == ("_scheduled", "_when")
    from asyncio import format_helpers
    assert callable(format_helpers._format_callback_source)


def test_handles_built_by_the_sim_loop_behave_like_asyncio_handles():
    from sim.world.core import World
    world = World()
    host = world.add_host("a.example", "192.0.2.1")
    seen = []
    h = host.loop.call_soon(seen.append, 1)
    t = host.loop.call_later(5, seen.append, 2)
    assert isinstance(h, events.Handle) and isinstance(t, events.TimerHandle)
    assert t.when() == 5.0 and not h.cancelled()
    repr(h), repr(t)                                  # every slot is set
    world.run(until=10)
    assert seen == [1, 2]


def test_stream_reader_buffer_details_the_data_reader_takes_lines_from():
    # mta/smtp/data.py takes buffered body lines straight from the buffer.
    from mta.smtp.data import _PRIVATE_READER
    src = inspect.getsource(asyncio.StreamReader.readuntil)
    for name in _PRIVATE_READER:
        assert f"self.{name}" in src, f"StreamReader.readuntil no longer uses {name}"
    loop = asyncio.new_event_loop()
    reader = asyncio.StreamReader(limit=10, loop=loop)
    loop.close()
    assert isinstance(reader._buffer, bytearray) and reader._limit == 10
    assert "self._transport.resume_reading()" in inspect.getsource(
        asyncio.StreamReader._maybe_resume_transport)
