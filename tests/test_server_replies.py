"""Every named reply constant in mta/ gives a code whose class agrees with
its enhanced status code (RFC 3463 §3.1: 2xx with 2.x.x, 4xx with 4.x.x,
5xx with 5.x.x).  Constants are found, not listed: reply strings
("550 5.1.1 ..."), (code, "5.1.1 text") pairs, and NAME_CODE/NAME_STATUS
pairs in any module of mta/."""
from __future__ import annotations

import importlib
import pkgutil
import re

import mta
from mta.smtp import replies

REPLY = re.compile(r"^([2-5]\d\d) (\d)\.\d{1,3}\.\d{1,3}\b")
ENHANCED = re.compile(r"^(\d)\.\d{1,3}\.\d{1,3}\b")


def reply_constants() -> dict[str, tuple[int, str]]:
    """``module.NAME`` -> (code, enhanced class digit) for every constant found."""
    found: dict[str, tuple[int, str]] = {}
    for info in pkgutil.walk_packages(mta.__path__, "mta."):
        module = importlib.import_module(info.name)
        names = vars(module)
        for name, value in names.items():
            if not name.isupper() or getattr(value, "__module__", module.__name__) != module.__name__:
                continue
            where = f"{info.name}.{name}"
            if isinstance(value, str) and (m := REPLY.match(value)):
                found[where] = (int(m[1]), m[2])
            elif (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], int)
                  and isinstance(value[1], str) and (m := ENHANCED.match(value[1]))):
                found[where] = (value[0], m[1])
            elif name.endswith("_CODE") and isinstance(value, int):
                status = names.get(name[:-5] + "_STATUS")
                if isinstance(status, str) and (m := ENHANCED.match(status)):
                    found[where] = (value, m[1])
    return found


def test_every_reply_constant_code_agrees_with_its_enhanced_code() -> None:
    found = reply_constants()
    # Discovery reaches every table: the server's replies, delivery's and policy's.
    assert {"mta.smtp.replies.R_TOO_BIG", "mta.smtp.replies.R_TIMEOUT",
            "mta.policy.relay.UNKNOWN_USER_CODE"} <= set(found)
    assert any(k.startswith("mta.delivery.") for k in found)
    wrong = {k: v for k, v in found.items() if str(v[0])[0] != v[1]}
    assert wrong == {}


def test_every_server_reply_is_found_or_has_no_enhanced_code() -> None:
    """A reply of the server that the discovery would miss is one whose
    class is unchecked: only 354 (RFC 3463 has no 3.x.x class) may be."""
    found = reply_constants()
    texts = {n: v for n, v in vars(replies).items() if n.startswith("R_")}
    missed = sorted(n for n in texts if f"mta.smtp.replies.{n}" not in found)
    assert missed == ["R_START_DATA"]
