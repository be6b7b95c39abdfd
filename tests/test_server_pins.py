"""Pitfall 10 for the receiving server: every private detail of aiosmtpd
1.4.6 it relies on is fenced in mta/smtp/aiosmtpd_fence.py.  If an upgrade
moves one, these fail naming it (pyproject.toml pins the version); and no
other module may name an aiosmtpd private, so the fence stays the only place
to look."""
from __future__ import annotations

import inspect
import re
from importlib.metadata import version
from pathlib import Path

import aiosmtpd.smtp
import pytest
from aiosmtpd.smtp import SMTP

from mta.smtp.aiosmtpd_fence import PRIVATE_DETAILS, FencedSMTP, missing_details
from mta.smtp.session import ReceivingSMTP

MTA = Path(__file__).resolve().parents[1] / "mta"
FENCE = MTA / "smtp" / "aiosmtpd_fence.py"


def aiosmtpd_private_names() -> set[str]:
    """Every ``_name`` aiosmtpd.smtp defines: module globals, class members
    and the attributes its methods set on ``self``."""
    src = inspect.getsource(aiosmtpd.smtp)
    names = set(re.findall(r"\bself\.(_[A-Za-z]\w*)", src))
    names |= {n for n in vars(SMTP) if n.startswith("_") and not n.startswith("__")}
    names |= {n for n in vars(aiosmtpd.smtp) if n.startswith("_") and not n.startswith("__")}
    return names | {"__ident__"}


def test_aiosmtpd_version_pinned() -> None:
    assert version("aiosmtpd") == "1.4.6"


@pytest.mark.parametrize("where,needle", PRIVATE_DETAILS, ids=[f"{w}:{n}" for w, n in PRIVATE_DETAILS])
def test_each_fenced_detail_is_still_there(where: str, needle: str) -> None:
    member = getattr(SMTP, where.split(".", 1)[1], None)
    assert member is not None, f"{where} is gone"
    assert needle in inspect.getsource(member), f"{where} no longer does {needle!r}"


def test_missing_details_reports_nothing_and_the_shared_dict_is_still_shared() -> None:
    assert missing_details() == []


def test_fence_routes_every_private_method_it_overrides() -> None:
    for name in ("_handle_client", "_set_post_data_state", "_reset_timeout", "_timeout_cb"):
        assert name in FencedSMTP.__dict__, name
        assert callable(getattr(SMTP, name, None)), f"aiosmtpd.smtp.SMTP.{name} is gone"


def test_no_module_but_the_fence_names_an_aiosmtpd_private() -> None:
    private = aiosmtpd_private_names()
    assert {"_handle_client", "_reader", "_smtp_methods", "_timeout_handle"} <= private
    word = re.compile(r"\b(_{1,2}[A-Za-z]\w*)\b")
    found = []
    for path in sorted(MTA.rglob("*.py")):
        if path == FENCE:
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            found += [f"{path.relative_to(MTA.parent)}:{i}: {m}" for m in word.findall(line)
                      if m in private]
    assert found == []


def test_the_session_overrides_no_aiosmtpd_private() -> None:
    from mta.smtp.secure import SecureCommands
    private = aiosmtpd_private_names()
    assert [n for n in ReceivingSMTP.__dict__ if n in private] == []
    assert [n for n in SecureCommands.__dict__ if n in private] == []
    for name in ("serve", "smtp_MAIL", "smtp_RCPT", "smtp_DATA", "smtp_EHLO",
                 "smtp_HELO", "smtp_ETRN", "push", "on_idle_timeout", "on_transaction_reset"):
        assert name in ReceivingSMTP.__dict__, name
    for name in ("smtp_AUTH", "challenge_auth", "smtp_STARTTLS"):     # mta/smtp/secure.py
        assert name in SecureCommands.__dict__, name


def test_aiosmtpd_still_allows_auth_inside_a_transaction() -> None:
    """Our AUTH order rule (RFC 4954 §4) is what refuses it: aiosmtpd answers 235."""
    assert "mail_from" not in inspect.getsource(SMTP.smtp_AUTH)
