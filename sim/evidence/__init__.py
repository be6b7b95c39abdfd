"""The evidence layer: the event log on disk, projections folded from it,
the guarantee checks, and the report.

* :mod:`sim.evidence.log`: canonical JSONL, Parquet, SQLite; sinks and readers;
* :mod:`sim.evidence.projections`: lifecycles, outcomes, replay, queues, links;
* :mod:`sim.evidence.checks`: one check per GUARANTEES.md ID (``REGISTRY``);
* :mod:`sim.evidence.report`: verdict.json, report.md, report.html;
* :mod:`sim.evidence.handlog`: a builder for hand-written logs (tests, docs).
"""
