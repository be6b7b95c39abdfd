"""A simulated run's maillog (mta.maillog, Postfix's format) read back by
``mxsim import postfix``: every line understood, and the imported log
accounts for the same recipient copies as the run itself."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MXSIM = str(Path(sys.executable).with_name("mxsim"))


def test_the_maillog_a_run_writes_imports_with_the_same_copies(tmp_path):
    run = subprocess.run([MXSIM, "run", str(ROOT / "scenarios" / "mx-fallback.yaml"),
                          "--out", str(tmp_path / "run")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    imp = subprocess.run([MXSIM, "import", "postfix", str(tmp_path / "run" / "maillog"),
                          "--out", str(tmp_path / "imp"), "--expect", "conservation"],
                         capture_output=True, text=True)
    assert imp.returncode == 0, imp.stdout + imp.stderr
    assert ", 0 not understood" in imp.stdout
    ran = json.loads((tmp_path / "run" / "verdict.json").read_text())
    got = json.loads((tmp_path / "imp" / "verdict.json").read_text())
    [c_run] = [g for g in ran["guarantees"] if g["id"] == "conservation"]
    [c_imp] = [g for g in got["guarantees"] if g["id"] == "conservation"]
    assert c_imp["met"] and c_imp["evidence"] == c_run["evidence"]
    assert got["counts"]["delivered"] == ran["counts"]["delivered"]
