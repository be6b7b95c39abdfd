"""Fixtures shared by the whole suite (SimPy's style: small worlds made on
demand, each test telling its own story).

* ``world``: a fresh simulated :class:`~sim.world.core.World` (seed 1, named
  after the test); at teardown it is shut down, and any exception that
  escaped component code fails the test;
* ``zones``: zone text for the example domains most tests use, with MX and
  address records for a primary and a secondary MX;
* ``log``: a :class:`~sim.evidence.handlog.LogBuilder` for hand-written
  event logs, named after the test.

Shared helper code (not fixtures) lives in ``tests/helpers/``; test modules
never import each other.
"""
from __future__ import annotations

import pytest

from sim.evidence.handlog import LogBuilder
from sim.world.core import World

#: Two MX hosts for example.net, a sender domain and a customer domain.
ZONES = """\
$ORIGIN example.net.
@        MX 10 mx1.example.net.
@        MX 20 mx2.example.net.
mx1      A  192.0.2.10
mx2      A  192.0.2.20
$ORIGIN sender.example.
@        MX 10 mail.sender.example.
mail     A  198.51.100.25
$ORIGIN customer.example.
@        MX 10 dial.customer.example.
@        MX 20 backup.isp.example.
dial     A  198.51.100.5
$ORIGIN isp.example.
backup   A  192.0.2.30
"""


@pytest.fixture
def zones() -> str:
    return ZONES


@pytest.fixture
def world(request):
    w = World(seed=1, scenario=request.node.name)
    yield w
    w.shutdown()
    w.scheduler.raise_errors()


@pytest.fixture
def log(request) -> LogBuilder:
    return LogBuilder(request.node.name, seed=1)
