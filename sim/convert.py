"""From a validated scenario to the simulated world's objects.

Pure conversions, no running: link schedules and link specs for
:mod:`sim.world.network`, resolver options for :mod:`sim.world.dns`, retry schedules for
:mod:`mta.retry.presets`.  The runner (:mod:`sim.runner`) assembles them.
"""
from __future__ import annotations

from typing import Any

from sim.world.network import LinkSpec
from sim.world.schedules import AlwaysUp, DialupWindows, Intervals, LinkSchedule, Outages, RandomOnOff
from sim.scenario import schema as s
from sim.scenario.roles import Retry


def link_schedule(spec: Any) -> LinkSchedule:
    """The :mod:`sim.world.schedules` object for a scenario schedule."""
    if isinstance(spec, s.AlwaysSchedule):
        return AlwaysUp()
    if isinstance(spec, s.OutagesSchedule):
        return Outages([(w.start, w.end) for w in spec.outages])
    if isinstance(spec, s.IntervalsSchedule):
        return Intervals([(w.start, w.end) for w in spec.up])
    if isinstance(spec, s.DialupSchedule):
        return DialupWindows(up=spec.up, every=spec.every, offset=spec.start, jitter=spec.jitter)
    if isinstance(spec, s.RandomSchedule):
        return RandomOnOff(mean_up=spec.mean_up, mean_down=spec.mean_down,
                           start_up=spec.initially == "up")
    raise TypeError(f"unknown schedule {spec!r}")


def link_spec(host: s.Host) -> LinkSpec:
    """The :class:`~sim.world.network.LinkSpec` for a scenario host."""
    port25 = host.access.port25
    return LinkSpec(
        latency=host.link.latency,
        bandwidth=host.link.bandwidth,
        schedule=link_schedule(host.link.schedule),
        down_connect=host.link.down_connect,
        down_open=host.link.down_open,
        port25="blocked" if port25 == "blocked" else "open",
        port25_redirect=port25.intercepted_by if isinstance(port25, s.Intercept) else None,
    )


def resolver_options(dns: s.Dns) -> dict[str, Any]:
    """Keyword arguments for ``World.set_zones`` / ``SimResolver``."""
    return {"latency": dns.latency,
            "outages": [(o.start, o.end, o.mode) for o in dns.outages]}


def retry_schedule(retry: Retry) -> Any:
    """An :class:`mta.retry.presets.RetrySchedule` for a scenario retry setting:
    the named preset with the scenario's overrides applied."""
    from mta.retry.presets import preset

    return preset(retry.preset, **retry.overrides())


def domain_lifetimes(retry: Retry) -> dict[str, float]:
    return dict(retry.lifetimes)


def initially_up(host: s.Host) -> bool:
    return link_schedule(host.link.schedule).initial_up
