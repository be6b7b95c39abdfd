"""The evidence layer (judge): the event log on disk, the evidence model
folded from it, the guarantee checks and the verdict.

* :mod:`sim.evidence.log`: canonical JSONL, Parquet, SQLite; sinks and readers;
* :mod:`sim.evidence.model`: :class:`~sim.evidence.model.Evidence`, every
  shared projection of one log, computed once; built from
  :mod:`~sim.evidence.lifecycle` (per-recipient lifecycles, fates, counts)
  and :mod:`~sim.evidence.links` (link periods, run bounds);
* :mod:`sim.evidence.queue_replay`: every queue and link at a time t, queue
  depth and stays (``mxsim replay``, the report's queue figure, notebooks);
* :mod:`sim.evidence.checks`: one check per GUARANTEES.md ID (``REGISTRY``),
  each with a typed parameter model (``validate_params``);
* :mod:`sim.evidence.derive`: check parameters completed from the scenario;
* :mod:`sim.evidence.verdict`: the typed :class:`~sim.evidence.verdict.Verdict`
  and verdict.json;
* :mod:`sim.evidence.handlog`: a builder for hand-written logs (tests, docs).

The human report built from a verdict is :mod:`sim.report`.
"""
