"""The ISP world (worlds/isp-7d.yaml) is what its generator writes, and valid."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from sim.pipeline import load, load_string, run_scenario

ROOT = Path(__file__).resolve().parent.parent


def generator():
    spec = importlib.util.spec_from_file_location("isp_world", ROOT / "benchmarks" / "isp_world.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_committed_world_is_the_generator_s_output_and_validates():
    text = (ROOT / "worlds" / "isp-7d.yaml").read_text()
    assert text == generator().world()
    sc = load(ROOT / "worlds" / "isp-7d.yaml")
    assert len(sc.hosts) == 1023 and len(sc.roles) == 1003


def test_a_small_isp_world_meets_its_expectations(tmp_path):
    """Every kind of customer, a day, a few hundred messages: the cross-cutting
    guarantees hold on evidence (bounces to former users make bounce-dsn decidable)."""
    sc = load_string(generator().world(domains=20, messages=400, days=1), "small-isp.yaml")
    res = run_scenario(sc, write=False)
    assert res.met, [(g.id, g.detail) for g in res.verdict.guarantees]
    assert all(g.judged for g in res.verdict.guarantees)
