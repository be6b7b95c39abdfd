"""Sweeps: many worlds of one scenario over varied settings and seeds.

``plan`` (pure expansion of ``--vary`` and ``--seeds``), ``variants`` (every
variant validated before any run), ``run`` (the worlds on Dask
distributed), ``dataset`` (the Parquet results, a part per run) and
``report`` (the sweep's HTML page and plots).
"""
