"""``mxsim explore``: a Hypothesis search over a scenario's ``explore:`` block
for the smallest world that breaks a guarantee (``search``)."""
