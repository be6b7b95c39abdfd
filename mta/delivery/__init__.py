"""Outbound delivery: routing (MX order, routes), the SMTP client transaction, DSNs."""
