"""``mxsim explore``: a deterministic search over a scenario's ``explore:`` block
for the smallest world that breaks a guarantee (``search``: generate, shrink,
trim), its worlds judged on the sweeps' Dask cluster (``worlds``)."""
