"""Releasing held mail on demand: ETRN, finger (SMTP-on-Demand), connectivity probes."""
