"""SIGKILLs of ``mxsim serve`` under load, each followed by a restart (slow).

The short form of ``benchmarks/reliability.py sigkill`` (which runs 100
kills): a served backup MX relaying to a sink is killed 4 times while 250
tracked messages (and Postfix's smtp-source, when installed) go through
it.  Every acknowledged message must reach the sink; duplicates are
allowed (at-least-once) and counted.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

_SPEC = importlib.util.spec_from_file_location(
    "reliability", Path(__file__).parent.parent / "benchmarks" / "reliability.py")
reliability = importlib.util.module_from_spec(_SPEC)
sys.modules["reliability"] = reliability     # dataclasses look their module up
_SPEC.loader.exec_module(reliability)


def test_no_acknowledged_message_is_lost_across_sigkills(tmp_path):
    r = reliability.sigkill_run(4, 250, work=tmp_path)
    print(r)
    assert r["kills"] == 4
    assert r["acknowledged"] == 250
    assert r["lost"] == 0, r["lost_ids"]
    assert r["delivered"] == 250
    assert r["exit_after_sigterm"] == 0
