"""Start-up: ``mxsim --help`` and ``mxsim validate`` import only what they use
(DESIGN.md's start-up goal: the simulator, the plots and pandas are not
loaded to print help or to validate a file)."""
from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from sim.cli import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("matplotlib", "pandas", "simpy", "sim.runner", "sim.world.loop", "sim.report.write",
         "aiosmtplib")


def loaded_after(argv: list[str]) -> set[str]:
    code = ("import sys, json\nfrom sim.cli import main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            "print(json.dumps(sorted(sys.modules)), file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    return set(json.loads(proc.stderr.strip().splitlines()[-1]))


@pytest.mark.parametrize("argv", [["--help"], ["validate", "scenarios/mx-fallback.yaml"],
                                  ["run", "--help"]])
def test_help_and_validate_leave_the_simulator_and_plots_unloaded(argv):
    mods = loaded_after(argv)
    heavy = [m for m in HEAVY if m in mods]
    if argv == ["run", "--help"]:
        heavy = [m for m in heavy if m not in ("sim.runner", "sim.world.loop", "simpy",
                                                "aiosmtplib")]
    assert heavy == []


def test_every_command_s_help_line_is_its_own():
    full = build_parser()._subparsers._group_actions[0]
    helps = {a.dest: a.help for a in full._choices_actions}
    assert [(n, h) for n, _, h in COMMANDS] == [(n, helps[n]) for n, _, _ in COMMANDS]
    for name, module, _ in COMMANDS:
        assert hasattr(importlib.import_module(module), "run")


def test_python_dash_m_gives_the_same_usage_error_as_the_console_script(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sim.cli", "report", str(tmp_path / "none")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("mxsim: ")


def test_validate_loads_only_the_checks_the_scenario_names():
    mods = loaded_after(["validate", "scenarios/mx-fallback.yaml"])
    checks = sorted(m.rsplit(".", 1)[1] for m in mods
                    if m.startswith("sim.evidence.checks.") and m.count(".") == 3)
    # mx-fallback expects mx-fallback, conservation, retry-discipline and mx-order.
    assert [c for c in checks if c not in ("base", "params", "helpers")] == \
        ["core", "delivery", "mx", "retry"]
