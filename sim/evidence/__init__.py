"""The evidence layer: the event log on disk, projections folded from it,
the guarantee checks, and the report.

* :mod:`sim.evidence.log`: canonical JSONL, Parquet, SQLite; sinks and readers;
* :mod:`sim.evidence.projections`: one import for every projection, from
  :mod:`~sim.evidence.lifecycle` (per-recipient lifecycles, fates, counts),
  :mod:`~sim.evidence.queue_replay` (replay at t, queue depth and stays) and
  :mod:`~sim.evidence.links` (link periods, SMTP transactions, durations);
* :mod:`sim.evidence.checks`: one check per GUARANTEES.md ID (``REGISTRY``);
* :mod:`sim.report.write`: writes a run's report, from
  :mod:`~sim.evidence.verdict` (verdict.json), :mod:`~sim.report.timeline`
  (counterexample timelines), :mod:`~sim.report.markdown` and
  :mod:`~sim.report.html` (with :mod:`~sim.report.plots`);
* :mod:`sim.evidence.handlog`: a builder for hand-written logs (tests, docs).
"""
