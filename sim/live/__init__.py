"""Live mode: one scenario host's roles on real sockets (``mxsim serve``).

The host is planned exactly as the simulation plans it
(:func:`sim.wiring.plan_hosts`), then built on the standard asyncio loop with
a durable SQLite queue (:mod:`mta.queue.sqlite_store`), real DNS (the
scenario's zones through :mod:`sim.live.zone_server`, or a real resolver),
and an event log in the simulation's format (:mod:`sim.live.eventlog`), so
``mxsim report`` and the checks read a live log as they read a simulated
one.  Nothing here touches the simulated loop.
"""
