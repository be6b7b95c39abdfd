"""Collect the scenario files here as tests: ``pytest scenarios/``.

Registers :mod:`sim.pytest_plugin` unless it is already active (through the
``pytest11`` entry point), so scenarios are never collected twice.
"""
from sim import pytest_plugin


def pytest_configure(config):
    if not config.pluginmanager.is_registered(pytest_plugin):
        config.pluginmanager.register(pytest_plugin, "mxsim-scenarios")
