"""The report: verdict.json contract, Markdown, self-contained HTML with
real images, byte-identical re-reporting, and the report/replay commands."""
from __future__ import annotations

import argparse
import base64
import io
import json
import os
import re
import subprocess
import sys

import pytest

from sim.cli import UsageError
from sim.commands import replay as replay_cmd
from sim.commands import report as report_cmd
from sim.evidence.handlog import LogBuilder
from sim.evidence.log import write_jsonl
from sim.evidence.lifecycle import Counts
from sim.evidence.verdict import met
from sim.report.tables import fmt_t
from sim.report.timeline import row_details, timeline
from sim.report.write import REPORT_HTML, REPORT_MD, VERDICT, build_report, write_report

A, B, C = "a@example.org", "b@example.org", "c@example.org"
MX1, MX2 = "mx1.example", "mx2.example"
H = 3600.0


def run_log():
    """mx1 down 0..30h; mx2 holds two messages and delivers one; one is lost."""
    L = LogBuilder("report-demo", seed=7)
    L.expect("conservation")
    L.expect("bounce-dsn")
    L.expect("dialup-primary-loses-mail", "violated", primary=MX1, domain="example.org")
    L.expect("mx-fallback", primary=MX1, secondary=MX2)
    L.link(0, MX1, False)
    L.accept(1 * H, MX2, "mx2/m1", "t1", [A, B])
    L.accept(2 * H, MX2, "mx2/m2", "t2", [C])
    L.attempt(2 * H, MX2, "mx2/m1", "t1", [A, B], MX1, pref=10, outcome="timeout")
    L.defer(2 * H + 30, MX2, "mx2/m1", "t1", A, 3 * H)
    L.defer(2 * H + 30, MX2, "mx2/m1", "t1", B, 3 * H)
    L.link(30 * H, MX1, True)
    L.attempt(31 * H, MX2, "mx2/m1", "t1", [A, B], MX1, pref=10)
    L.accept(31 * H, MX1, "mx1/m1", "t1", [A, B], client_ip="192.0.2.20", queue=[A])
    L.relay(31 * H, MX2, "mx2/m1", "t1", A, MX1)
    L.relay(31 * H, MX2, "mx2/m1", "t1", B, MX1)
    L.deliver(31 * H + 2, MX1, "mx1/m1", "t1", A)
    return L.end(50 * H)


@pytest.fixture(scope="module")
def demo_report():
    return build_report(run_log())


def pngs(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"',
                                                    html)]


def test_verdict_is_typed(demo_report):
    v = demo_report.verdict
    assert (v.scenario, v.seed, v.ok, v.met_count) == ("report-demo", 7, False, 0)
    assert v.counts == Counts(accepted=3, delivered=1, queued=1, lost=1)
    assert [g.id for g in v.guarantees if not g.met] == [
        "conservation", "bounce-dsn", "dialup-primary-loses-mail", "mx-fallback"]
    assert v.guarantees[0].counterexamples[0]["rcpt"] == B
    assert v.case_names() == ["conservation", "bounce-dsn", "dialup-primary-loses-mail",
                              "mx-fallback"]


def test_verdict_contract(demo_report):
    v = json.loads(demo_report.verdict.to_json())
    assert v["scenario"] == "report-demo" and v["seed"] == 7
    assert v["counts"] == {"accepted": 3, "delivered": 1, "bounced": 0, "discarded": 0,
                           "queued": 1, "relayed_out": 0, "lost": 1, "duplicates": 0,
                           "dsns": 0}
    g = {x["id"]: x for x in v["guarantees"]}
    assert list(g) == ["conservation", "bounce-dsn", "dialup-primary-loses-mail", "mx-fallback"]
    for x in g.values():
        assert set(x) >= {"id", "expected", "status", "detail", "counterexamples"}
        assert x["status"] in ("pass", "fail") and x["expected"] in ("holds", "violated")
    assert g["conservation"]["status"] == "fail" and not g["conservation"]["met"]
    assert g["conservation"]["counterexamples"][0]["rcpt"] == B
    # nothing bounced: bounce-dsn had nothing to judge, and says so
    assert not g["bounce-dsn"]["met"] and not g["bounce-dsn"]["decided"]
    assert g["bounce-dsn"]["detail"] == \
        "undecidable: nothing to judge: 0 bounces and DSNs in the log"
    assert g["bounce-dsn"]["evidence"] is None
    assert g["conservation"]["evidence"] == {"count": 5, "unit": "recipient copies"}
    # expected violated, but nothing bounced: the check passes, so NOT met
    assert g["dialup-primary-loses-mail"]["status"] == "pass"
    assert not g["dialup-primary-loses-mail"]["met"]
    assert g["mx-fallback"]["status"] == "fail"     # t2 still on mx2 20 h after mx1 returned
    assert g["mx-fallback"]["params"] == {"primary": MX1, "secondary": MX2}
    assert v["ok"] is False and list(v) == sorted(v)


def test_failure_text_gives_the_counterexample_timeline(demo_report):
    from sim.report.failures import failure_text
    text = failure_text(demo_report.verdict, 0, run_log())
    assert text.startswith("report-demo: conservation: expected holds, fail: ")
    assert "counterexample 1: lost: accepted (the client was told 250)" in text
    assert "1d 07:00:00  mx1.example" in text and "message_accepted" in text


def test_met_rules():
    assert met("holds", "pass", True) and not met("holds", "fail", True)
    assert met("violated", "fail", True)
    assert not met("violated", "fail", False)   # undecidable is never evidence
    assert not met("violated", "pass", True)


def test_html_has_tables_and_real_images(demo_report):
    rep = demo_report
    html = rep.html
    for needle in ('<table id="counts">', '<table id="guarantees">', 'class="timeline"',
                   '<table id="hosts">', '<table id="undelivered">',
                   "conservation: counterexample", "<td>lost</td>", "mx2/m1"):
        assert needle in html
    assert "http://" not in html and "https://" not in html     # self-contained
    images = pngs(html)
    assert len(images) == 4 and set(rep.figures) == {"fates", "latency", "queues", "links"}
    from matplotlib.image import imread
    for png in images:
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
        pix = imread(io.BytesIO(png))
        assert pix.shape[0] > 200 and pix.shape[1] > 500
        assert pix[..., :3].std() > 0.05          # not a blank canvas
        assert b"Software" not in png             # no version metadata


def test_markdown_report(demo_report):
    md = demo_report.markdown
    assert ("| conservation | Every recipient copy a host took responsibility for has a fate. "
            "| - | - | holds | fail | 5 recipient copies | NO |") in md
    assert "| lost | 1 |" in md
    assert "| mx1.example | 2 | 1 | 0 | 0 | 0 | 0 | 0 | 1 |" in md
    assert ("| t1 | b@example.org | lost | mx2.example > mx1.example | 01:00:00 | 1d 07:00:00 | "
            "mx1.example: accepted (the client was told 250) but never queued") in md
    assert ("| t2 | c@example.org | queued | mx2.example | 02:00:00 | - | "
            "still queued on mx2.example after 0 attempts |") in md
    assert "### conservation: counterexample" in md
    assert "| 1d 07:00:00 | 111600 | mx1.example | message_accepted |" in md


def test_empty_run_reports_without_crashing_and_without_empty_panels():
    rep = build_report(LogBuilder("empty").end(10))
    assert rep.verdict.guarantees == () and rep.verdict.ok
    # no single-bar fates chart, no empty latency, queue or link plot: words instead
    assert len(pngs(rep.html)) == 0
    assert "No mail was queued." in rep.html and "Every link stayed up." in rep.html
    assert "No recipient was delivered to a mailbox." in rep.html
    assert "No recipient was delivered to a mailbox." in rep.markdown


def write_run(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    write_jsonl(run_log(), d / "events.jsonl")
    return d


def cli(module, argv):
    """Run one subcommand module the way sim.cli.main does."""
    parser = argparse.ArgumentParser(prog="mxsim")
    sub = parser.add_subparsers(dest="command", required=True)
    module.add_parser(sub).set_defaults(_run=module.run)
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except UsageError as exc:
        print(f"mxsim: {exc}", file=sys.stderr)
        return 2


def test_report_command_reproduces_bytes(tmp_path, capsys):
    d = write_run(tmp_path)
    write_report(run_log(), d)
    first = {n: (d / n).read_bytes() for n in (VERDICT, REPORT_MD, REPORT_HTML)}
    for n in first:
        (d / n).unlink()
    assert cli(report_cmd, ["report", str(d)]) == 1          # an expectation is not met
    out = capsys.readouterr().out
    assert "FAIL conservation" in out and "report written to" in out
    for n, data in first.items():
        assert (d / n).read_bytes() == data, n
    json.loads(first[VERDICT])


def test_report_is_identical_under_another_hash_seed(tmp_path):
    d = write_run(tmp_path)
    write_report(run_log(), d)
    out = tmp_path / "again"
    code = ("import sys; from sim.commands import report as r; import argparse;"
            "a = argparse.Namespace(dir=sys.argv[1], out=sys.argv[2]); sys.exit(r.run(a))")
    env = dict(os.environ, PYTHONHASHSEED="12345", MPLBACKEND="Agg")
    res = subprocess.run([sys.executable, "-c", code, str(d), str(out)], env=env,
                         capture_output=True, text=True, cwd=os.path.dirname(__file__) + "/..")
    assert res.returncode == 1, res.stderr
    for n in (VERDICT, REPORT_MD, REPORT_HTML):
        assert (out / n).read_bytes() == (d / n).read_bytes(), n


def test_report_command_refuses_a_truncated_log(tmp_path, capsys):
    d = write_run(tmp_path)
    p = d / "events.jsonl"
    p.write_bytes(p.read_bytes()[:-5])
    assert cli(report_cmd, ["report", str(d)]) == 2
    err = capsys.readouterr().err
    assert "events.jsonl:" in err and "truncated" in err
    assert cli(report_cmd, ["report", str(tmp_path / "missing")]) == 2


def test_report_command_exit_zero_when_all_met(tmp_path):
    L = LogBuilder("ok", 1)
    L.expect("conservation")
    L.accept(1, MX1, "m1", "t1", [A])
    L.deliver(2, MX1, "m1", "t1", A)
    write_jsonl(L.end(10), tmp_path / "events.jsonl")
    assert cli(report_cmd, ["report", str(tmp_path)]) == 0


@pytest.mark.parametrize("at, mx2_lines, link", [
    ("36h", ["mx2/m2 c@example.org"], "up"),
    ("1d4h", ["mx2/m1 a@example.org", "mx2/m1 b@example.org", "mx2/m2 c@example.org"], "down"),
    ("7200", ["mx2/m1 a@example.org", "mx2/m1 b@example.org", "mx2/m2 c@example.org"], "down"),
])
def test_replay_command(tmp_path, capsys, at, mx2_lines, link):
    d = write_run(tmp_path)
    assert cli(replay_cmd, ["replay", str(d), "--at", at]) == 0
    out = capsys.readouterr().out
    block = out.split("mx2.example:")[1].split("links:")[0]
    assert [ln.split(" (trace")[0].strip() for ln in block.strip().splitlines()[1:]] == mx2_lines
    assert f"mx1.example: {link}" in out


def test_replay_command_shows_attempts_and_rejects_bad_time(tmp_path, capsys):
    d = write_run(tmp_path)
    cli(replay_cmd, ["replay", str(d), "--at", "2h30m"])
    out = capsys.readouterr().out
    assert "state at t=9000 s (02:30:00)" in out
    assert "1 attempts, next attempt 03:00:00" in out
    assert cli(replay_cmd, ["replay", str(d), "--at", "soon"]) == 2
    assert "--at: expected a duration" in capsys.readouterr().err


def test_fmt_t():
    assert fmt_t(0) == "00:00:00"
    assert fmt_t(93784.5) == "1d 02:03:04.5"
    assert fmt_t(None) == "-"


def test_commands_are_registered_in_the_real_cli(tmp_path, capsys):
    from sim.cli import main
    d = write_run(tmp_path)
    assert main(["replay", str(d), "--at", "1d"]) == 0
    assert "state at t=86400 s (1d 00:00:00)" in capsys.readouterr().out
    assert main(["report", str(d)]) == 1
    assert (d / REPORT_HTML).exists()


@pytest.mark.slow
def test_real_run_is_re_reported_byte_identically(tmp_path):
    """A scenario run by the runner, re-reported from events.jsonl alone."""
    from pathlib import Path

    from sim.report.write import report_dir
    from sim.pipeline import run_scenario
    from sim.scenario.loader import load_scenario
    scenario = Path(__file__).parent.parent / "scenarios" / "mx-fallback.yaml"
    result = run_scenario(load_scenario(scenario), out=tmp_path / "run")
    again = tmp_path / "again"
    report_dir(tmp_path / "run", again)
    for n in (VERDICT, REPORT_MD, REPORT_HTML):
        assert (again / n).read_bytes() == (tmp_path / "run" / n).read_bytes(), n
    assert result.verdict.counts.accepted > 0


def test_long_timelines_condense_repeated_rounds_and_keep_the_give_up():
    """Five days of half-hourly retries must not push the give-up out of the
    counterexample timeline: identical rounds are condensed into one row."""
    L = LogBuilder()
    L.submit(0, "s.example", "s.example/m1", "t1", ["b@far.example"])
    for k in range(100):
        t = 1800.0 * k
        L.attempt(t, "s.example", "s.example/m1", "t1", ["b@far.example"], "mx.far.example")
        L.defer(t + 30, "s.example", "s.example/m1", "t1", "b@far.example", t + 1800,
                code=421, text="4.4.2 timed out", dest="mx.far.example")
    L.bounce(180000, "s.example", "s.example/m1", "t1", "b@far.example", code=421,
             text="4.4.2 timed out", reason="expired")
    rows = timeline(L.end(200000), {"trace": "t1", "msg": "s.example/m1"})
    kinds = [d["kind"] for d in rows]
    assert "bounced" in kinds[-2:]
    assert kinds.count("attempt_started") == 2 and len(rows) < 12
    [repeated] = [d for d in rows if d["kind"] == "repeated"]
    assert "98 more delivery rounds" in row_details(repeated)
    assert "421 4.4.2 timed out" in row_details(repeated)


def test_judging_and_rendering_fold_the_log_once(monkeypatch):
    """Every check and report section reads one Evidence: the lifecycles and
    outcomes of a log are folded once per report, however many ask."""
    import sim.evidence.model as model
    calls = {"lifecycles": 0, "outcomes": 0}

    def counted(name, fn):
        def wrapper(*args, **kw):
            calls[name] += 1
            return fn(*args, **kw)
        return wrapper

    monkeypatch.setattr(model, "lifecycles", counted("lifecycles", model.lifecycles))
    monkeypatch.setattr(model, "outcomes", counted("outcomes", model.outcomes))
    rep = build_report(run_log())
    assert len(rep.verdict.guarantees) == 4
    assert calls == {"lifecycles": 1, "outcomes": 1}


def test_guarantee_result_in_one_word(demo_report):
    g = {x.id: x for x in demo_report.verdict.guarantees}
    assert g["conservation"].result == "fail" and g["bounce-dsn"].result == "undecided"
    assert g["dialup-primary-loses-mail"].result == "pass"
    assert g["dialup-primary-loses-mail"].evidence == "5 copies for the domain"
    L = LogBuilder("nothing-happens")
    L.expect("mx-fallback", primary=MX1, secondary=MX2)
    [nothing] = build_report(L.end(10)).verdict.guarantees
    assert (nothing.status, nothing.decided, nothing.result) == ("fail", False, "undecided")


def test_the_report_explains_the_run(tmp_path):
    """Description, topology, each guarantee's meaning, parameters (durations
    humanised) and why-note, losses by cause, no dead anchors, and the same
    sections in report.md as in report.html."""
    import re as _re
    from pathlib import Path

    from sim.pipeline import load, run_scenario

    root = Path(__file__).resolve().parent.parent
    sc = load(root / "scenarios" / "dialup-primary-loses-mail.yaml")
    out = run_scenario(sc, out=tmp_path / "run").out
    md, html = (out / "report.md").read_text(), (out / "report.html").read_text()
    for text in (md, html):
        assert sc.description in text
        assert "dial-up: up" in text or "up only" in text            # the link, in words
        assert "Every recipient copy a host took responsibility for has a fate." in text
        assert "lifetime" in text and "432000" not in text            # 5d, not seconds
        assert "Not delivered, by cause" in text
    assert "| customer.example | 10 dial.customer.example |" in md
    anchors = set(_re.findall(r'id="([^"]+)"', html))
    assert all(a in anchors for a in _re.findall(r'href="#([^"]+)"', html))
    md_heads = _re.findall(r"^## (.+)$", md, flags=_re.M)
    html_heads = [_re.sub(r"<[^>]+>", "", h) for h in _re.findall(r"<h2[^>]*>(.*?)</h2>", html)]
    figures_only = ("Queues", "Links")
    assert md_heads == [h for h in html_heads if h not in figures_only and ": " not in h]

    fallback = load(root / "scenarios" / "mx-fallback.yaml")
    why = next(e.why for e in fallback.expectations if e.why)
    out = run_scenario(fallback, out=tmp_path / "fallback").out
    assert why in (out / "report.md").read_text() and why in (out / "report.html").read_text()


def test_releases_are_marked_on_the_queue_and_link_plots():
    from sim.report import plots
    from sim.evidence.links import LinkPeriod

    periods = [LinkPeriod("dial.example", "dial.example", "down", 0.0, 50.0),
               LinkPeriod("dial.example", "dial.example", "up", 50.0, 100.0)]
    depths = {"q.example": [(10.0, 3), (60.0, 0)]}
    plain = plots.queues_png(depths, periods, 0.0, 100.0)
    marked = plots.queues_png(depths, periods, 0.0, 100.0, [(55.0, "q.example", "etrn")])
    assert marked != plain
    assert plots.links_png(periods, 0.0, 100.0, [(55.0, "q.example", "finger")]) != \
        plots.links_png(periods, 0.0, 100.0)
    # a release on another host does not mark this host's queue
    assert plots.queues_png(depths, periods, 0.0, 100.0, [(55.0, "other", "etrn")]) == plain


def test_the_link_timeline_shows_the_links_down_longest_when_there_are_many():
    import io

    from PIL import Image

    from sim.evidence.links import LinkPeriod
    from sim.report import plots

    def link(i: int, down: float) -> list[LinkPeriod]:
        h = f"h{i:02d}.example"
        return [LinkPeriod(h, h, "down", 0.0, down), LinkPeriod(h, h, "up", down, 100.0)]

    def rows(png: bytes) -> float:      # figure height is 1.2 + 0.45 per row (inches, 100 dpi)
        return (Image.open(io.BytesIO(png)).size[1] / 100 - 1.2) / 0.45

    few = [p for i in range(5) for p in link(i, 10.0)]
    assert round(rows(plots.links_png(few, 0.0, 100.0))) == 5
    many = [p for i in range(plots.MAX_LINKS + 10) for p in link(i, float(i))]
    assert round(rows(plots.links_png(many, 0.0, 100.0))) == plots.MAX_LINKS
    # which ones: moving the 40 longest outages to other links changes the picture
    swapped = [p for i in range(plots.MAX_LINKS + 10)
               for p in link(i, float(plots.MAX_LINKS + 10 - i))]
    assert plots.links_png(swapped, 0.0, 100.0) != plots.links_png(many, 0.0, 100.0)


def test_a_figure_lets_go_of_its_artists_and_pixels_once_drawn():
    # The cycle collector is paused while a report is built: a figure kept
    # whole until then held every artist and its pixel buffer.
    from matplotlib.figure import Figure

    from sim.report.plots import png_bytes
    fig = Figure(figsize=(2, 2))
    fig.add_subplot().plot([0, 1], [1, 0])
    png = png_bytes(fig)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert fig.axes == [] and fig.canvas.renderer is None
