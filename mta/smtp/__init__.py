"""The receiving SMTP server.

:mod:`~mta.smtp.server` (the listener) and :mod:`~mta.smtp.config` (its
settings); :mod:`~mta.smtp.session` (one connection), which consults the
pure :mod:`~mta.smtp.rules` and :mod:`~mta.smtp.transaction` and speaks the
texts of :mod:`~mta.smtp.replies`; :mod:`~mta.smtp.data` (DATA under a size
limit); :mod:`~mta.smtp.aiosmtpd_fence` (every private aiosmtpd detail);
:mod:`~mta.smtp.basic` (the bare aiosmtpd/aiosmtplib pair).
"""
