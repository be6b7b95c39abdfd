"""The check index (``sim.evidence.checks.MODULES``) names the module that
registers each guarantee's check, so that :func:`find` can import one check
without the others."""
from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import sim.evidence.checks as checks
from sim.evidence.checks import MODULES, all_checks, find

ROOT = Path(__file__).resolve().parent.parent


def test_the_index_is_what_the_modules_register():
    for info in pkgutil.iter_modules(checks.__path__):
        importlib.import_module(f"sim.evidence.checks.{info.name}")
    registered = {gid: chk.fn.__module__.rsplit(".", 1)[1]
                  for gid, chk in all_checks().items()}
    assert registered == MODULES


def test_find_gives_the_check_and_none_for_an_unknown_id():
    assert find("conservation").id == "conservation"
    assert find("no-such-guarantee") is None


def test_find_imports_only_the_module_of_that_check():
    code = ("import sys\nfrom sim.evidence.checks import find\nfind('mx-order')\n"
            "print(sorted(m for m in sys.modules if m.startswith('sim.evidence.checks.')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    assert "sim.evidence.checks.mx'" in out
    assert "sim.evidence.checks.relay'" not in out and "checks.feed'" not in out


def test_registry_is_complete_on_first_use():
    code = ("from sim.evidence.checks import REGISTRY, MODULES\n"
            "assert sorted(REGISTRY) == sorted(MODULES), sorted(REGISTRY)\nprint('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr
