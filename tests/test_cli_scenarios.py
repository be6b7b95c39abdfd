"""``mxsim validate``, ``schema``, ``run`` and ``check``: exit codes, messages
(never a traceback), summaries, progress only when asked, JUnit XML."""
import json
import xml.etree.ElementTree as ET

import pytest

from sim.cli import main
from helpers.scenarios import INVALID, SMALL, WRONG, write


def test_schema_prints_the_json_schema(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "mxsim scenario"
    assert "hosts" in schema["properties"] and "DialupSchedule" in schema["$defs"]


def test_validate_good_and_bad(tmp_path, capsys):
    good = write(tmp_path, "small", SMALL)
    bad = write(tmp_path, "invalid", INVALID)
    assert main(["validate", str(good)]) == 0
    out = capsys.readouterr()
    assert f"{good}: ok (small: 3 hosts, 2 roles, 1 actors, 4 expectations)" in out.out
    assert main(["validate", str(good), str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:25:50: traffic[0].rate: " in err and "traffic[0].rate: expected a rate such as 10/h" in err
    assert "Traceback" not in err


def test_validate_a_folder_and_warn_about_cross_cutting(tmp_path, capsys):
    write(tmp_path, "small", SMALL)
    write(tmp_path, "bare", SMALL.replace("name: small", "name: bare").split("expectations:")[0])
    assert main(["validate", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "bare.yaml: warning: 'conservation' is neither in expectations nor in waive" in err


def test_validate_missing_file(capsys):
    assert main(["validate", "/nonexistent.yaml"]) == 2
    assert "/nonexistent.yaml: no such file" in capsys.readouterr().err


def test_run_prints_a_summary_and_where_the_report_is(tmp_path, capsys):
    path = write(tmp_path, "small", SMALL)
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("small (seed 5): 4h simulated in ")
    assert "recipients: accepted" in out and "expectations met: 4/4" in out
    assert "\r" not in out                     # not a terminal: no progress line
    assert out.rstrip().endswith(f"report written to {tmp_path / 'out'}/report.md "
                                 "(and report.html, verdict.json, events.jsonl)")
    assert (tmp_path / "out" / "events.jsonl").is_file()


def test_run_with_progress_and_seed(tmp_path, capsys):
    path = write(tmp_path, "small", SMALL)
    assert main(["run", str(path), "--seed", "9", "--progress",
                 "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "\r" in out and "in flight" in out and "small (seed 9)" in out


def test_run_exit_codes(tmp_path, capsys):
    assert main(["run", str(write(tmp_path, "wrong", WRONG)),
                 "--out", str(tmp_path / "w")]) == 1
    assert "mx-fallback       violated  pass    NO" in capsys.readouterr().out
    assert main(["run", str(write(tmp_path, "invalid", INVALID)), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "traffic[0].rate" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as info:      # argparse: bad command line
        main(["run", "x.yaml", "--seed", "abc"])
    assert info.value.code == 2


def test_check_lines_junit_and_exit(tmp_path, capsys):
    folder = tmp_path / "scen"
    folder.mkdir()
    write(folder, "small", SMALL)
    write(folder, "wrong", WRONG)
    junit = tmp_path / "junit.xml"
    code = main(["check", str(folder), "--junit", str(junit), "--out", str(tmp_path / "r")])
    assert code == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("PASS small (4h simulated, ")
    assert out[1].startswith("  ok   mx-fallback: expected holds, pass")
    assert any(line.startswith("FAIL wrong ") for line in out)
    assert any(line.startswith("  FAIL mx-fallback: expected violated, pass") for line in out)
    assert (tmp_path / "r" / "small" / "verdict.json").is_file()
    root = ET.parse(junit).getroot()
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert suites["small"].get("failures") == "0" and suites["wrong"].get("failures") == "1"
    props = {p.get("name"): p.get("value") for p in suites["small"].iter("property")}
    assert props["seed"] == "5" and int(props["accepted"]) > 0
    failure = suites["wrong"].find("testcase[@name='mx-fallback']/failure")
    assert failure is not None and "mx-fallback: expected violated, pass: " in failure.text


def test_check_with_an_invalid_file_exits_2(tmp_path, capsys):
    write(tmp_path, "invalid", INVALID)
    junit = tmp_path / "j.xml"
    assert main(["check", str(tmp_path), "--junit", str(junit), "--out", str(tmp_path)]) == 2
    assert "INVALID" in capsys.readouterr().out
    assert ET.parse(junit).getroot().find("testsuite/testcase/error") is not None


def test_check_failure_text_shows_the_counterexample_timeline(tmp_path):
    from sim.pipeline import run_scenario
    from sim.report.failures import failure_text
    from sim.scenario.loader import load_text

    text = SMALL.replace("  - guarantee: conservation\n",
                         "  - guarantee: conservation\n    expect: violated\n")
    result = run_scenario(load_text(text), write=False)
    # conservation holds here; expecting it violated gives a plain "not met"
    text = failure_text(result.verdict, 1, result.events)
    assert text.startswith("small: conservation: expected violated, pass: ")
    wrong = run_scenario(load_text(
        SMALL.replace("  - guarantee: mx-fallback\n    params: {primary: mx1.example.net,",
                      "  - guarantee: mx-fallback\n    params: {primary: mx2.example.net,")
        .replace("secondary: mx2.example.net}", "secondary: mx1.example.net}")), write=False)
    assert not wrong.verdict.guarantees[0].met
    assert "undecidable: no LinkDown of the primary mx2.example.net" in \
        failure_text(wrong.verdict, 0, wrong.events)


def test_run_output_cut_short_by_its_reader_is_not_an_error(tmp_path):
    """``mxsim run ... | head -0``: the reader leaves before the summary."""
    import subprocess
    import sys
    from pathlib import Path
    path = write(tmp_path, "small", SMALL)
    mxsim = Path(sys.executable).with_name("mxsim")
    proc = subprocess.Popen([str(mxsim), "run", str(path), "--out", str(tmp_path / "out")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0 and "Traceback" not in err, err
    assert (tmp_path / "out" / "verdict.json").is_file()


# --------------------------------------------------------------------------
# Output paths are checked before anything runs
# --------------------------------------------------------------------------

def test_output_paths_that_cannot_work_fail_before_the_run(tmp_path, capsys):
    from sim.cli import main

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    scenario = write(tmp_path, "small.yaml", SMALL)
    cases = [
        (["run", str(scenario), "--out", str(blocker / "out")], "--out"),
        (["run", str(scenario), "--out", str(blocker)], "expected a folder, but it is a file"),
        (["check", str(scenario), "--junit", str(blocker / "j.xml")], "--junit"),
        (["check", str(scenario), "--junit", str(tmp_path)], "expected a file name"),
        (["demo", "--events", str(blocker / "ev.jsonl")], "--events"),
    ]
    for argv, words in cases:
        assert main(argv) == 2, argv
        out, err = capsys.readouterr()
        assert words in err and "Traceback" not in err, (argv, err)
        assert out == "", argv                    # nothing ran
    assert not (tmp_path / "small").exists()


def test_missing_output_folders_are_made(tmp_path, capsys):
    from sim.cli import main

    scenario = write(tmp_path, "small.yaml", SMALL)
    junit = tmp_path / "new" / "deeper" / "junit.xml"
    assert main(["check", str(scenario), "--junit", str(junit),
                 "--out", str(tmp_path / "reports")]) == 0
    assert junit.is_file()
    events = tmp_path / "other" / "demo.jsonl"
    assert main(["demo", "--events", str(events)]) == 0 and events.is_file()


def test_replay_refuses_a_time_outside_the_run(tmp_path, capsys):
    from sim.cli import main

    scenario = write(tmp_path, "small.yaml", SMALL)
    assert main(["run", str(scenario), "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    assert main(["replay", str(tmp_path / "run"), "--at", "10d"]) == 2
    assert "ends at 4h" in capsys.readouterr().err
    assert main(["replay", str(tmp_path / "run"), "--at", "-5"]) == 2
    assert main(["replay", str(tmp_path / "run"), "--at", "2h"]) == 0


def test_version(capsys):
    from sim.cli import main

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.startswith("mxsim ")


def test_messages_speak_the_users_language(tmp_path, capsys):
    """No Python keyword errors, no 34 IDs on one line, no reST in --help,
    no detail cut mid-word."""
    from sim.cli import build_parser, main
    from sim.commands.run import _short

    text = SMALL.replace("rate: 8/h,", "rate: 8/h, retry: {preset: exim, factor: 2},")
    text = text.replace("  - guarantee: mx-order\n", "  - guarantee: mx-ordre\n")
    scenario = write(tmp_path, "words.yaml", text)
    assert main(["validate", str(scenario)]) == 2
    err = capsys.readouterr().err
    assert "the exim preset has no 'factor' setting; with exim a scenario may set" in err
    assert "__init__" not in err and "keyword argument" not in err
    assert "expected a guarantee ID of docs/catalogue.md, got 'mx-ordre' (did you mean " \
           "'mx-order'?)" in err
    assert "'smart-host'" not in err                     # the 34 IDs are not listed
    for action in build_parser()._subparsers._group_actions[0].choices.values():
        assert "``" not in (action.description or "")
    cut = _short("alpha beta gamma delta epsilon zeta eta theta", 20)
    assert cut.endswith(" ...") and all(w in "alpha beta gamma delta" for w in cut[:-4].split())


@pytest.mark.parametrize("old, new, words", [
    ("seed: 5", "seed: five", "seed: expected a whole number, got 'five'"),
    ("relay_domains: example.net}", "relay_domains: example.net, recipient_limit: {limit: 0}}",
     "recipient_limit.limit: expected at least 1, got 0"),
    ("{name: mx2.example.net, address: 192.0.2.20}",
     "{name: mx2.example.net, address: 192.0.2.20, link: 5}",
     "hosts[1].link: expected a mapping of keys, got 5"),
])
def test_type_errors_are_in_plain_words(tmp_path, capsys, old, new, words):
    from sim.cli import main

    assert main(["validate", str(write(tmp_path, "t.yaml", SMALL.replace(old, new)))]) == 2
    err = capsys.readouterr().err
    assert words in err and "input should be" not in err.lower()
