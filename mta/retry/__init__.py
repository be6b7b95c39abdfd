"""Retry schedules of real MTAs (Postfix, Exim, Sendmail, RFC 5321) as pure functions."""
