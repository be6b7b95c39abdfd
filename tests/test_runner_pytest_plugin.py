"""The pytest plugin, run as CI runs it: ``pytest scenarios/`` in a fresh
process, one test per expectation, failures with the counterexample
timeline, counts as JUnit properties, invalid files as one failing item."""
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from helpers.scenarios import INVALID, LOSSY, SMALL, write

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).resolve().parent.parent / "scenarios" / "conftest.py"


def test_collection_in_process(pytester):
    """Fast: collection only (nothing runs), one item per expectation."""
    folder = pytester.mkdir("scenarios")
    (folder / "conftest.py").write_text(CONFTEST.read_text())
    write(folder, "lossy", LOSSY)
    write(folder, "invalid", INVALID)
    (folder / "notes.txt").write_text("not a scenario")
    result = pytester.runpytest_inprocess("scenarios", "--collect-only", "-q",
                                          "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["scenarios/invalid.yaml::scenario",
                                 "scenarios/lossy.yaml::conservation", "*2 tests collected*"])


@pytest.mark.slow
def test_pytest_collects_scenarios_as_expectation_items(tmp_path):
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "conftest.py").write_text(CONFTEST.read_text())
    write(folder, "small", SMALL)
    write(folder, "lossy", LOSSY)
    write(folder, "invalid", INVALID)
    junit = tmp_path / "junit.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "scenarios", "-p", "no:cacheprovider", "-q",
         "-rf", f"--junitxml={junit}", "-o", "addopts="],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "2 failed, 4 passed" in out, out
    # the failing expectation shows the check's detail and a timeline
    assert "lossy: conservation: expected holds, fail: " in out
    assert "counterexample 1: lost" in out
    assert "message_accepted" in out and "relay.provider.example" in out
    # the invalid file is one failing item naming the key path
    assert "traffic[0].rate: expected a rate such as 10/h" in out
    assert "Traceback" not in out
    assert (tmp_path / "reports" / "small" / "report.md").is_file()
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert set(cases) == {"mx-fallback", "conservation", "retry-discipline",
                          "mx-order", "scenario"}
    props = {p.get("name"): p.get("value") for p in cases["mx-order"].iter("property")}
    assert props["seed"] == "5" and props["status"] == "pass" and int(props["accepted"]) > 0
