"""Pitfall 10 for the receiving server: mta/smtp/server.py overrides or uses
these private details of aiosmtpd 1.4.6.  If an upgrade moves one, this
fails naming it (pyproject.toml pins the version)."""
from __future__ import annotations

import collections
import inspect
from importlib.metadata import version

from aiosmtpd.smtp import SMTP

from mta.smtp.server import ReceivingSMTP


def test_aiosmtpd_version_pinned() -> None:
    assert version("aiosmtpd") == "1.4.6"


def test_private_members_we_rely_on_exist() -> None:
    for name in ("_handle_client", "_call_handler_hook", "_set_rset_state",
                 "_set_post_data_state", "_reset_timeout", "_timeout_cb", "_cb_client_connected"):
        assert callable(getattr(SMTP, name, None)), name
    init = inspect.getsource(SMTP.__init__)
    for needle in ("self.command_size_limits.clear()", "limit=self.line_length_limit",
                   "self._smtp_methods", "self._auth_methods", "self._auth_require_tls",
                   "self._tls_protocol"):
        assert needle in init, needle
    # The class-level dict we shadow per instance (aiosmtpd keeps it shared).
    assert isinstance(SMTP.__dict__["command_size_limits"], collections.defaultdict)
    # The command loop we replace reads via self._reader and writes via push.
    assert "self._reader.readuntil()" in inspect.getsource(SMTP._handle_client)
    assert "self._writer.write(" in inspect.getsource(SMTP.push)
    # aiosmtpd's AUTH still answers 235 inside a transaction: our override matters.
    assert "mail_from" not in inspect.getsource(SMTP.smtp_AUTH)


def test_our_overrides_are_in_place() -> None:
    for name in ("_handle_client", "smtp_MAIL", "smtp_RCPT", "smtp_DATA", "smtp_AUTH",
                 "smtp_EHLO", "smtp_HELO", "smtp_ETRN", "push", "_timeout_cb"):
        assert name in ReceivingSMTP.__dict__, name
