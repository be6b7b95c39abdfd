"""Hostile SMTP clients, driven by a hypothesis state machine (slow).

Each example is one simulated world with a receiving server (the role of
``tests/test_server_hostile.py``) and a few dozen client connections, driven
by the machine of :mod:`helpers.hostile_streams` (what the rules send, the
model of each connection, the invariants).  After every example the idle
streams must time out and leave no connection open.  The run counts its
streams (connections) and asserts at least :data:`MIN_STREAMS` (10,000);
``benchmarks/hostile.py streams`` runs 100,000 against ``mxsim serve`` on
real sockets, and ``tests/test_reliability_limits.py`` a short live form.
"""
from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from mta.roles import CustomerMailServer
from helpers.hostile_streams import SimTarget, machine
from helpers.server import MX_IP, world_with

pytestmark = pytest.mark.slow

ROLE = CustomerMailServer(hostname="mail.customer.example", local_domains=("customer.example",),
                          mailboxes=("u1@customer.example", "u2@customer.example"),
                          max_message_size=100_000)
MIN_STREAMS = int(os.environ.get("MXSIM_HOSTILE_STREAMS", "10000"))
EXAMPLES = int(os.environ.get("MXSIM_HOSTILE_EXAMPLES", "400"))


def make_world():
    world, _, _, feed, server = world_with(ROLE)
    return world, feed, server


def test_hostile_streams_never_crash_or_hang_and_there_are_enough_of_them():
    """The state machine, then its count, in one test (no order between tests,
    which pytest-xdist may split across workers)."""
    target = SimTarget(make_world, MX_IP, ROLE.idle_timeout)
    run_state_machine_as_test(machine(target, "customer.example"), settings=settings(
        max_examples=EXAMPLES, stateful_step_count=200, deadline=None, derandomize=True,
        suppress_health_check=list(HealthCheck)))
    t = target.tally
    print(f"hostile: {t.examples} worlds, {t.streams} streams, {t.replies} replies, "
          f"{len(t.acked)} messages acknowledged, {t.idle_closed} streams timed out idle, "
          f"{t.withheld} replies withheld")
    assert t.withheld == 0, t
    assert t.streams >= MIN_STREAMS, t
