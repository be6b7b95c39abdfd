"""What validation reads of a check (its parameter model and causes, from
``sim.evidence.checks.params.<module>``) is what the check registers, so a
scenario validates against exactly the check that will judge it."""
from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import sim.evidence.checks.params as params_pkg
from sim.evidence.checks import MODULES, all_checks, declared, validate_because, validate_params
from sim.evidence.checks.params import NoParams

ROOT = Path(__file__).resolve().parent.parent


def test_declared_params_and_causes_are_the_registered_ones():
    checks = all_checks()
    assert sorted(checks) == sorted(MODULES)
    for gid, chk in checks.items():
        model, causes = declared(gid)
        assert model is chk.params, gid
        assert causes == chk.causes, gid


def test_each_parameter_module_declares_only_its_own_checks():
    modules = {info.name for info in pkgutil.iter_modules(params_pkg.__path__)}
    assert modules == set(MODULES.values())
    for name in sorted(modules):
        mod = importlib.import_module(f"sim.evidence.checks.params.{name}")
        own = {gid for gid, m in MODULES.items() if m == name}
        assert set(mod.PARAMS) <= own and set(mod.CAUSES) <= own, name


def test_an_unknown_guarantee_declares_nothing():
    assert declared("no-such-guarantee") is None
    assert validate_params("no-such-guarantee", {"x": 1}) == []
    assert "names no causes" in validate_because("no-such-guarantee", "x")


def test_a_check_without_parameters_declares_none():
    assert declared("bounce-dsn") == (NoParams, ())
    assert validate_params("bounce-dsn", {"x": 1}) == [
        ("x", "unknown key; this check takes no parameters")]


def test_validating_parameters_and_causes_imports_no_check():
    code = ("import sys\nfrom sim.evidence.checks import validate_because, validate_params\n"
            "assert validate_params('mx-order', {'address_limt': 3})\n"
            "assert validate_because('mx-order', 'no-fallback') is None\n"
            "print(sorted(m for m in sys.modules if m.startswith('sim.evidence')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    assert "sim.evidence.checks.params.mx'" in out
    assert "sim.evidence.checks.mx'" not in out and "sim.evidence.checks.base'" not in out
    assert "sim.evidence.model'" not in out
