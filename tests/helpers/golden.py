"""Golden verdicts: each library scenario's verdict, checked in under
``scenarios/golden/``, so that a change in behaviour shows as a reviewed diff.

The golden form is the verdict with each counterexample's ``events`` list
replaced by its length and a SHA-256 of its canonical JSON: any drift still
changes the file, but the diff stays readable (one recipient's seven days of
retries are 150 kB of events).  Regenerate after an intended change with
``MXSIM_UPDATE_GOLDEN=1 pytest -m slow tests/test_runner_library.py`` and
review the diff before committing it.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).resolve().parents[2] / "scenarios" / "golden"
UPDATE = os.environ.get("MXSIM_UPDATE_GOLDEN") == "1"


def golden_view(verdict: dict[str, Any]) -> dict[str, Any]:
    """The verdict with counterexample event lists digested."""
    out = json.loads(json.dumps(verdict))
    for g in out.get("guarantees", []):
        for c in g.get("counterexamples", []):
            if isinstance(c.get("events"), list):
                blob = json.dumps(c["events"], sort_keys=True, separators=(",", ":"))
                c["events"] = {"count": len(c["events"]),
                               "sha256": hashlib.sha256(blob.encode()).hexdigest()}
    return out


def render(verdict: dict[str, Any]) -> str:
    return json.dumps(golden_view(verdict), sort_keys=True, indent=2, allow_nan=False) + "\n"


def check_golden(name: str, verdict: dict[str, Any]) -> str | None:
    """None when ``verdict`` matches the checked-in golden file of ``name``,
    else a unified diff (golden first).  With MXSIM_UPDATE_GOLDEN=1 the file
    is rewritten instead."""
    path = GOLDEN / f"{name}.json"
    text = render(verdict)
    if UPDATE:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return None
    if not path.exists():
        return f"no golden verdict {path}; create it with MXSIM_UPDATE_GOLDEN=1"
    old = path.read_text()
    if old == text:
        return None
    return "".join(difflib.unified_diff(old.splitlines(True), text.splitlines(True),
                                        f"golden/{name}.json", "this run", n=2))
