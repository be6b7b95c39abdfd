"""``mxsim explore``: a planted failure found, shrunk to a small file, reproduced.

The planted failure: a relay that keeps only 4 recipients per message the
documented way (the rest are dropped: silent loss).  The explore: block
lets the newsletter sender's recipients range over 1..12, its message count
over 1..4 and its rate over three choices; an unrelated second sender is
there to be removed.  The smallest failing world is one message to 5
recipients at the first rate, without the other sender.
"""
from __future__ import annotations

import pytest
import yaml

from sim.cli import main
from sim.pipeline import load

SCENARIO = """\
name: lossy
seed: 3
duration: 2h
hosts:
  - {name: relay.provider.example, address: 192.0.2.50}
  - {name: mailer.customer.example, address: 198.51.100.8}
  - {name: other.customer.example, address: 198.51.100.9}
  - {name: mx1.example.net, address: 192.0.2.10}
dns:
  zones: |
    $ORIGIN example.net.
    @     MX 10 mx1.example.net.
    mx1   A  192.0.2.10
    $ORIGIN provider.example.
    relay A  192.0.2.50
roles:
  - {role: relay, host: relay.provider.example, trusted_networks: 198.51.100.0/24,
     recipient_limit: {limit: 4, behaviour: documented}}
  - {role: primary-mx, host: mx1.example.net, local_domains: example.net}
traffic:
  - {kind: sender, host: other.customer.example, smart_host: relay.provider.example,
     rate: 1/20m, arrivals: fixed, count: 2, recipients: 1,
     from: ann@customer.example, to: ["a{n}@example.net"]}
  - {kind: sender, host: mailer.customer.example, smart_host: relay.provider.example,
     rate: 1/20m, arrivals: fixed, count: 1, recipients: 1,
     from: news@customer.example, to: ["r{n}@example.net"]}
expectations:
  - guarantee: conservation
  - guarantee: bounce-dsn
waive: {retry-discipline: tiny, mx-order: tiny}
explore:
  - key: traffic[1].recipients
    range: {from: 1, to: 12}
  - key: traffic[1].count
    range: {from: 1, to: 4}
  - key: traffic[1].rate
    choices: [1/20m, 1/5m, 1/m]
"""


@pytest.fixture
def scenario(tmp_path):
    path = tmp_path / "lossy.yaml"
    path.write_text(SCENARIO)
    return path


def test_a_planted_failure_shrinks_to_a_small_file_that_reproduces(scenario, tmp_path, capsys):
    out = tmp_path / "found"
    assert main(["explore", str(scenario), "--guarantee", "conservation", "--seed", "7",
                 "--out", str(out)]) == 1
    text = (out / "minimal.yaml").read_text()
    data = yaml.safe_load(text)
    assert data["traffic"] == [{"kind": "sender", "host": "mailer.customer.example",
                                "smart_host": "relay.provider.example", "rate": "1/20m",
                                "arrivals": "fixed", "count": 1, "recipients": 5,
                                "from": "news@customer.example", "to": ["r{n}@example.net"]}]
    assert [e["guarantee"] for e in data["expectations"]] == ["conservation"]
    assert "explore" not in data
    assert len(text.splitlines()) < 60 and text.startswith("# Minimal world found by")
    assert "#   traffic[1].recipients = 5" in text
    load(out / "minimal.yaml")                                  # a valid scenario
    assert (out / "verdict.json").exists() and (out / "report.html").exists()
    capsys.readouterr()
    assert main(["run", str(out / "minimal.yaml"), "--out", str(tmp_path / "again")]) == 1
    assert "conservation  holds     fail" in capsys.readouterr().out
    # The same seed finds the same world, byte for byte.
    assert main(["explore", str(scenario), "--guarantee", "conservation", "--seed", "7",
                 "--out", str(tmp_path / "twice")]) == 1
    assert (tmp_path / "twice" / "minimal.yaml").read_text() == text.replace(
        str(out), str(tmp_path / "twice"))


def test_no_failing_world_within_the_budget(scenario, tmp_path, capsys):
    held = SCENARIO.replace("to: 12}", "to: 4}")          # never above the limit
    path = tmp_path / "held.yaml"
    path.write_text(held)
    assert main(["explore", str(path), "--guarantee", "conservation", "--budget", "6",
                 "--out", str(tmp_path / "o")]) == 0
    assert "no failing world in" in capsys.readouterr().out
    assert not (tmp_path / "o" / "minimal.yaml").exists()


@pytest.mark.parametrize("change, message", [
    (("explore:\n", "ignored:\n"), "unknown key"),
    (("  - key: traffic[1].count\n", "  - key: traffic[5].count\n"), "there is no [5]"),
    (("choices: [1/20m, 1/5m, 1/m]", "choices: [1/20m, often]"), "traffic[1].rate"),
    (("range: {from: 1, to: 4}", "range: {from: 4, to: 1}"), "'from' at most 'to'"),
    (("    range: {from: 1, to: 4}\n", "    range: {from: 1, to: 4}\n    choices: [1]\n"),
     "exactly one of 'range' or 'choices'"),
    (("key: traffic[1].rate", "key: traffic[1]..rate"), "key path"),
])
def test_bad_explore_blocks_exit_2_before_any_run(tmp_path, capsys, change, message):
    path = tmp_path / "bad.yaml"
    path.write_text(SCENARIO.replace(*change))
    assert main(["explore", str(path), "--guarantee", "conservation",
                 "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err


def test_the_guarantee_must_be_expected_and_a_block_present(scenario, tmp_path, capsys):
    assert main(["explore", str(scenario), "--guarantee", "mx-fallback",
                 "--out", str(tmp_path / "o")]) == 2
    assert "does not expect it" in capsys.readouterr().err
    plain = tmp_path / "plain.yaml"
    plain.write_text(SCENARIO.split("explore:")[0])
    assert main(["explore", str(plain), "--guarantee", "conservation",
                 "--out", str(tmp_path / "o")]) == 2
    assert "no explore: block" in capsys.readouterr().err
