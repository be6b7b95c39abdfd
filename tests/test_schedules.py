"""Link schedules (sim/world/schedules.py): the change streams they produce and
what the world makes of them."""
from __future__ import annotations

import random

from sim.events import LinkDown, LinkUp
from sim.world.network import LinkSpec
from sim.world.schedules import Intervals, Outages
from sim.world.core import World


def test_touching_outages_are_one_outage():
    rng = random.Random(0)
    assert list(Outages([(0, 10), (10, 20), (30, 40)]).transitions(rng)) == \
        [(20, True), (30, False), (40, True)]
    assert list(Outages([(5, 10), (10, 15)]).transitions(rng)) == [(5, False), (15, True)]
    assert list(Intervals([(0, 10), (10, 20), (30, 40)]).transitions(rng)) == \
        [(20, False), (30, True), (40, False)]
    assert list(Outages([(5, 10), (20, 30)]).transitions(rng)) == \
        [(5, False), (10, True), (20, False), (30, True)]


def test_changes_are_strictly_increasing_in_time():
    rng = random.Random(0)
    for sched in (Outages([(0, 1), (1, 2), (2, 3), (5, 6)]), Intervals([(1, 2), (2, 4), (4, 5)])):
        times = [t for t, _ in sched.transitions(rng)]
        assert times == sorted(set(times)), sched


def test_world_sees_no_zero_length_flap_between_touching_outages():
    world = World(seed=1)
    world.add_host("dial.example", "192.0.2.9",
                   link=LinkSpec(schedule=Outages([(0, 100), (100, 200)])))
    world.run(until=300)
    changes = [(type(e).__name__, e.t) for e in world.events if isinstance(e, (LinkUp, LinkDown))]
    assert changes == [("LinkDown", 0.0), ("LinkUp", 200.0)]
