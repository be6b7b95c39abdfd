"""A sweep of 72 runs on a LocalCluster: loss against outage length per retry preset.

A dial-up customer's only MX is down from 2 h until a day the sweep varies
(1..6 d); one sender mails it for six hours on Postfix, Exim or Sendmail
schedules; 4 seeds each.  The dataset must show what the presets document:
nothing bounces while the outage is shorter than the sender's queue
lifetime, everything bounces (with a DSN) once it is longer: Exim (4 d)
from 5 d on, Postfix and Sendmail (5 d) only at 6 d.
"""
from __future__ import annotations

import pytest

from sim.cli import main
from sim.sweep import dataset
from sim.sweep.report import per_run

pytestmark = pytest.mark.slow

DAY = 86400.0
OUTAGE = "hosts[0].link.schedule.up[1].start"
PRESET = "traffic[0].retry"

SCENARIO = """# A dial-up customer's only MX, down from 2h until a time the sweep varies.
name: dialup-outage
seed: 1
duration: 7d
hosts:
  - name: dial.customer.example
    address: 198.51.100.5
    link:
      schedule:
        kind: intervals
        up: [{start: 0, end: 2h}, {start: 3d, end: 7d}]
  - {name: mta.sender.example, address: 192.0.2.11}
dns:
  zones: |
    $ORIGIN customer.example.
    @     MX 10 dial.customer.example.
    dial  A  198.51.100.5
    $ORIGIN sender.example.
    @     MX 10 mta.sender.example.
    mta   A  192.0.2.11
roles:
  - {role: primary-mx, host: dial.customer.example, local_domains: customer.example}
traffic:
  - {kind: sender, host: mta.sender.example, retry: postfix, rate: 4/h, start: 3h, stop: 9h,
     from: ann@sender.example, to: bob@customer.example}
expectations:
  - guarantee: conservation
  - guarantee: bounce-dsn
  - guarantee: sender-gives-up
    params: {senders: [mta.sender.example]}
waive:
  retry-discipline: not what this sweep studies
  mx-order: one MX only
"""


def test_loss_against_outage_length_per_preset(tmp_path, capsys):
    path = tmp_path / "dialup-outage.yaml"
    path.write_text(SCENARIO)
    out = tmp_path / "sweep"
    assert main(["sweep", str(path), "--vary", f"{OUTAGE}=1d..6d/1d",
                 "--vary", f"{PRESET}=postfix,exim,sendmail", "--seeds", "1-4",
                 "--out", str(out)]) == 0
    assert "72 runs (72 run now" in capsys.readouterr().out
    frame = dataset.read(out)
    assert frame["run_id"].nunique() == 72 and len(frame) == 72 * 3
    assert frame[frame["guarantee"] == "conservation"]["met"].all()
    # No check fails on evidence; bounce-dsn is undecided where nothing bounced.
    assert not ((frame["status"] == "fail") & frame["decided"]).any()
    runs = per_run(frame)
    assert (runs["accepted"] > 0).all() and (runs["lost"] == 0).all()
    bounced = runs.groupby([PRESET, OUTAGE])["bounced_fraction"].agg(["min", "max"])
    lifetime = {"exim": 4 * DAY, "postfix": 5 * DAY, "sendmail": 5 * DAY}
    for (preset, outage), row in bounced.iterrows():
        # Mail is sent from 3 h on, so an outage ending at the lifetime is still in time.
        want = 1.0 if outage > lifetime[preset] else 0.0
        assert row["min"] == row["max"] == want, (preset, outage)
    # A bounce comes with its DSN (delay warnings are DSNs too).
    assert (runs["dsns"] >= runs["bounced"]).all()
    page = (out / "index.html").read_text()
    assert "72 of 72 runs" in page
    assert (out / "hosts-0--link-schedule-up-1--start-bounced.png").exists()
    assert not (out / "traffic-0--retry-bounced.png").exists()   # presets are the lines
