"""Show: the human report of a judged run, from its verdict and its evidence.

* :mod:`sim.report.write`: builds and writes verdict.json, report.md, report.html;
* :mod:`sim.report.markdown`, :mod:`sim.report.html`: the two renderers;
* :mod:`sim.report.tables`: the tables they share, and the time format;
* :mod:`sim.report.timeline`: counterexample timelines;
* :mod:`sim.report.failures`: why an expectation is not met, as text (CLI,
  JUnit, pytest);
* :mod:`sim.report.plots`: the figures, as deterministic PNGs.
"""
