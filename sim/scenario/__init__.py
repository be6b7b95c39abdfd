"""Scenario files: the format (pydantic models), quantities, and loading
with clear errors.

* :mod:`sim.scenario.schema`: the top-level model, hosts, links, DNS,
  expectations (roles in :mod:`~sim.scenario.roles`, actors in
  :mod:`~sim.scenario.traffic`, shared field types in :mod:`~sim.scenario.types`);
* :mod:`sim.scenario.durations`: ``90m``, ``30MB``, ``56kbit``, ``10/h``;
* :mod:`sim.scenario.loader`: :func:`load_scenario`, errors with file, line,
  key path and what was expected.

The conversion into component configurations is the next stage,
:mod:`sim.convert`.
"""
