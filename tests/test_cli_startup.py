"""Start-up: ``mxsim --help`` and ``mxsim validate`` import only what they use
(DESIGN.md's start-up goal: the simulator, the plots and pandas are not
loaded to print help or to validate a file).

Validating builds every role's configuration so that the components can
refuse a setting, and checks each expectation's parameters and causes; it
never needs the servers (aiosmtpd, the SMTP session), the queue, the event
classes, the evidence model or the checks themselves, only their parameter
modules (``sim.evidence.checks.params.*``).
"""
from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from sim.cli import COMMANDS, build_parser
from sim.evidence.checks import MODULES

ROOT = Path(__file__).resolve().parent.parent
#: Never loaded by ``--help``, ``validate`` or ``run --help`` (the run's own
#: imports happen when it runs).
HEAVY = ("matplotlib", "pandas", "simpy", "aiosmtplib", "aiosmtpd", "sim.runner", "sim.wiring",
         "sim.world.loop", "sim.world.network", "sim.report", "sim.report.write", "mta.smtp",
         "mta.smtp.server", "mta.queue", "mta.feed.chain", "mta.context", "mta.events",
         "sim.events", "sim.evidence.model", "sim.evidence.checks.base")
#: The check implementations (their parameter modules are in ``params``).
CHECKS = sorted({f"sim.evidence.checks.{m}" for m in MODULES.values()})
#: Library scenarios that between them have every kind of role (the feed,
#: the restricted relay, exchangers, customer servers) and ``because:``.
SCENARIOS = ["scenarios/mx-fallback.yaml", "scenarios/feed-greylisting-spammers.yaml",
             "scenarios/auth-relay-limits.yaml", "scenarios/queueing-server-etrn.yaml",
             "scenarios/filters-on-every-mx-broken.yaml"]


def loaded_after(argv: list[str]) -> set[str]:
    code = ("import sys, json\nfrom sim.cli import main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            "print(json.dumps(sorted(sys.modules)), file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    return set(json.loads(proc.stderr.strip().splitlines()[-1]))


def test_help_loads_no_command_and_no_scenario_model():
    mods = loaded_after(["--help"])
    assert [m for m in HEAVY + ("pydantic", "yaml", "dns", "sim.scenario", "sim.pipeline",
                                "importlib.metadata") if m in mods] == []


def test_run_help_leaves_the_simulator_and_plots_unloaded():
    mods = loaded_after(["run", "--help"])
    assert [m for m in ("matplotlib", "pandas", "sim.report.write") if m in mods] == []


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_validate_loads_no_server_queue_event_or_check(scenario):
    mods = loaded_after(["validate", scenario])
    assert [m for m in HEAVY + ("asyncio",) if m in mods] == []
    assert [m for m in CHECKS if m in mods] == []
    assert "sim.scenario.loader" in mods and "mta.roles" in mods    # it did validate


def test_every_command_s_help_line_is_its_own():
    full = build_parser()._subparsers._group_actions[0]
    helps = {a.dest: a.help for a in full._choices_actions}
    assert [(n, h) for n, _, h in COMMANDS] == [(n, helps[n]) for n, _, _ in COMMANDS]
    for name, module, _ in COMMANDS:
        assert hasattr(importlib.import_module(module), "run")


def test_version_still_answers():
    proc = subprocess.run([sys.executable, "-m", "sim.cli", "--version"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("mxsim ")


def test_python_dash_m_gives_the_same_usage_error_as_the_console_script(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sim.cli", "report", str(tmp_path / "none")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("mxsim: ")


def test_validate_loads_only_the_parameter_modules_the_scenario_names():
    mods = loaded_after(["validate", "scenarios/mx-fallback.yaml"])
    params = sorted(m.rsplit(".", 1)[1] for m in mods
                    if m.startswith("sim.evidence.checks.params."))
    # mx-fallback expects mx-fallback, conservation, retry-discipline and mx-order.
    assert params == ["core", "delivery", "mx", "retry"]
