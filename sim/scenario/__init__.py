"""Scenario files: the format (pydantic models), quantities, and loading
with clear errors.

* :mod:`sim.scenario.schema`: the top-level model, hosts, links, DNS,
  expectations (roles in :mod:`~sim.scenario.roles`, actors in
  :mod:`~sim.scenario.traffic`, shared field types in :mod:`~sim.scenario.types`);
* :mod:`sim.scenario.quantities`: ``30MB``, ``56kbit``, ``10/h`` (durations
  such as ``90m`` follow :mod:`mta.units`);
* :mod:`sim.scenario.loader`: :func:`load_scenario`, errors with file, line,
  key path and what was expected.

The conversion into component configurations is the next stage,
:mod:`sim.convert`.
"""
