"""Releasing held mail on demand: ETRN, finger (SMTP-on-Demand), connectivity probes."""

#: The finger port (RFC 1288 §2.1), here rather than in :mod:`.finger` so that
#: a role's configuration can default to it without loading the listener.
FINGER_PORT = 79
