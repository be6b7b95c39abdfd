"""The receiving SMTP server: aiosmtpd subclass, session, DATA reader, replies."""
