"""benchmarks/layers.py: self time by layer, generic code charged to its callers."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def layers():
    spec = importlib.util.spec_from_file_location("layers", ROOT / "benchmarks" / "layers.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_paths_map_to_layers(layers):
    p = "/x/proj/"
    assert layers.layer_of("/x/proj/mta/events/codec.py", p).startswith("event log")
    assert layers.layer_of("/x/proj/mta/smtp/session.py", p).startswith("mail components")
    assert layers.layer_of("/x/proj/sim/world/loop.py", p).startswith("simulated loop")
    assert layers.layer_of("/x/proj/.venv/lib/python3.11/site-packages/simpy/core.py", p) \
        .startswith("simulated loop")
    assert layers.layer_of("/x/proj/.venv/lib/python3.11/site-packages/aiosmtpd/smtp.py", p) \
        == "aiosmtpd"
    assert layers.layer_of(layers._STDLIB + "asyncio/events.py", p) == "asyncio"
    # Charged to callers: built-ins, generic stdlib, the maillog formatter.
    assert layers.layer_of("~", p) is None
    assert layers.layer_of(layers._STDLIB + "json/encoder.py", p) is None
    assert layers.layer_of("/x/proj/mta/maillog.py", p) is None


class FakeStats:
    """pstats.Stats' ``stats``: key -> (cc, nc, tt, ct, callers)."""

    def __init__(self, stats):
        self.stats = stats


def test_generic_time_goes_to_its_callers_by_edge_and_through_generic_callers(layers):
    proj = Path("/x/proj")
    codec = ("/x/proj/mta/events/codec.py", 1, "encode")
    report = ("/x/proj/sim/report/write.py", 1, "write")
    enc = (layers._STDLIB + "json/encoder.py", 1, "encode")
    join = ("~", 0, "<method 'join' of 'str' objects>")
    stats = FakeStats({
        codec: (1, 1, 1.0, 4.0, {}),
        report: (1, 1, 2.0, 3.0, {}),
        # json.encoder's own 2 s: 1.5 s when the codec called it, 0.5 s the report.
        enc: (2, 2, 2.0, 4.0, {codec: (1, 1, 1.5, 3.0), report: (1, 1, 0.5, 1.0)}),
        # str.join called only by json.encoder: follows json's callers by their
        # cumulative time (3 : 1).
        join: (1, 1, 0.8, 0.8, {enc: (1, 1, 0.8, 0.8)}),
    })
    got = layers.layer_seconds(stats, proj)
    assert got == pytest.approx({"event log and codec (mta/events)": 1.0 + 1.5 + 0.6,
                                 "report (sim/report)": 2.0 + 0.5 + 0.2})
    assert "| event log and codec (mta/events) | 3.1 | 53.4% |" in layers.table(got)


def test_the_command_tabulates_a_saved_profile(layers, tmp_path, capsys):
    import cProfile

    prof = cProfile.Profile()
    prof.runcall(json.dumps, {"a": [1, 2, 3]})
    prof.dump_stats(tmp_path / "p.prof")
    assert layers.main([str(tmp_path / "p.prof")]) == 0
    assert "| total profiled |" in capsys.readouterr().out
    assert layers.main([str(tmp_path / "missing.prof")]) == 2
