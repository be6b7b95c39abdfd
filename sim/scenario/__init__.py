"""Scenario files: the format (pydantic models), quantities, loading with
clear errors, and the conversion into a runnable world.

* :mod:`sim.scenario.schema`: the top-level model, hosts, links, DNS,
  expectations (roles in :mod:`~sim.scenario.roles`, actors in
  :mod:`~sim.scenario.traffic`, shared field types in :mod:`~sim.scenario.types`);
* :mod:`sim.scenario.quantities`: ``30MB``, ``56kbit``, ``10/h`` (durations
  such as ``90m`` follow :mod:`mta.units`);
* :mod:`sim.scenario.loader`: :func:`load_scenario`, errors with file, line,
  key path and what was expected;
* :mod:`sim.convert` and :mod:`sim.wiring`: links, zones,
  roles and actors for :mod:`sim.world.core` (used by :mod:`sim.runner`).
"""
from sim.scenario.loader import Problem, ScenarioError, load_scenario, load_text
from sim.scenario.schema import Scenario

__all__ = ["Problem", "Scenario", "ScenarioError", "load_scenario", "load_text"]
