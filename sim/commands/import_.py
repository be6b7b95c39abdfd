"""``mxsim import postfix MAILLOG... --out DIR [--expect ID ...]``: judge a real Postfix log.

Reads Postfix log files (plain or .gz; syslog or maillog_file format) into
mxsim's event log and writes into DIR what a run writes: events.jsonl,
verdict.json, report.md and report.html, plus unknown-lines.txt listing
every line that was not understood (never fatal).  --expect names the
guarantees to judge (default: conservation, bounce-dsn, retry-discipline);
``ID:{key: value, ...}`` gives the check's parameters.  retry-discipline
without parameters judges every host as a Postfix with its documented
defaults (postconf(5)); give the instance's own settings with
``retry-discipline:{default: {preset: postfix, settings: {minimal_backoff_time: 2s}}}``.  Exit
status: 0 every expectation met, 1 some not met, 2 bad input (a missing
file, a file with no Postfix line, an unknown guarantee or parameter).
"""
from __future__ import annotations

import argparse
import gzip
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import yaml

from sim.cli import UsageError
from sim.commands.paths import output_dir
from sim.report.failures import verdict_line

DEFAULT_EXPECT = ("conservation", "bounce-dsn", "retry-discipline")
UNKNOWN = "unknown-lines.txt"
#: Unknown lines printed to the terminal before the rest are only in the file.
SHOWN = 5


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("import", help="judge a real MTA's log like a run",
                       description=__doc__.split("\n\n")[0])
    kinds = p.add_subparsers(dest="log_format", required=True, metavar="FORMAT")
    pf = kinds.add_parser("postfix", help="Postfix logs (smtpd, cleanup, qmgr, smtp, "
                                          "local, bounce lines)",
                          description=__doc__.split("\n\n")[1].replace("``", ""))
    pf.add_argument("logs", metavar="MAILLOG", nargs="+", help="Postfix log files, oldest first")
    pf.add_argument("--out", metavar="DIR", required=True, help="output folder")
    pf.add_argument("--expect", metavar="ID[:{PARAMS}]", action="append", default=[],
                    help="a guarantee to judge, optionally with parameters as a YAML mapping "
                         "(repeatable)")
    pf.add_argument("--year", type=int,
                    help="year of timestamps without one (default: each file's "
                         "modification year)")
    pf.add_argument("--name", help="the name in the verdict (default: postfix-<first file>)")
    return p


def parse_expect(text: str, hosts: list[str] | None = None) -> tuple[str, dict]:
    """``ID`` or ``ID:{k: v}`` as (guarantee, params), validated; raises UsageError."""
    from sim.evidence.checks import validate_params
    from sim.scenario.schema import GUARANTEE_IDS

    gid, sep, rest = text.partition(":")
    gid = gid.strip()
    if gid not in GUARANTEE_IDS:
        raise UsageError(f"--expect {text}: {gid!r} is not a guarantee ID of docs/catalogue.md")
    params: object = {}
    if sep:
        try:
            params = yaml.safe_load(rest)
        except yaml.YAMLError:
            raise UsageError(f"--expect {text}: the parameters are not YAML") from None
        if not isinstance(params, dict):
            raise UsageError(f"--expect {text}: expected parameters as a mapping, "
                             f"such as {gid}:{{key: value}}")
    problems = validate_params(gid, params, hosts)
    if problems:
        raise UsageError("; ".join(f"--expect {gid}: {k + ': ' if k else ''}{m}"
                                   for k, m in problems))
    return gid, params


def _postfix_defaults() -> dict:
    """retry-discipline parameters for hosts running Postfix's defaults."""
    return {"default": {"preset": "postfix"}}


def _open(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return path.open(encoding="utf-8", errors="replace")


def run(args: argparse.Namespace) -> int:
    from sim.importers.postfix import NotPostfix, import_logs
    from sim.pipeline import write_outputs

    out = output_dir(args.out, "--out")
    paths = [Path(p) for p in args.logs]
    for p in paths:
        if not p.is_file():
            raise UsageError(f"{p}: no such file")
    expects = [parse_expect(e) for e in (args.expect or DEFAULT_EXPECT)]
    years = {str(p): args.year or datetime.fromtimestamp(os.stat(p).st_mtime,
                                                          timezone.utc).year for p in paths}
    name = args.name or "postfix-" + "".join(
        c if c.isalnum() or c in "._-" else "-" for c in paths[0].name.lower()).strip("-.")
    files = [(str(p), _open(p)) for p in paths]
    try:
        imported = import_logs(files, years, name)
    except NotPostfix as exc:
        raise UsageError(str(exc)) from None
    finally:
        for _, f in files:
            f.close()
    planned = []
    for gid, params in expects:
        if gid == "retry-discipline" and not params:
            params = _postfix_defaults()
        planned.append((gid, "holds", params))
    _, verdict = write_outputs(out, imported.log(planned))
    (out / UNKNOWN).write_text("".join(f"{f}:{n}: {text}\n" for f, n, text in imported.unknown),
                               encoding="utf-8")
    print(f"{name}: {imported.lines} lines, {imported.used} used, {imported.ignored} understood "
          f"and not needed, {len(imported.unknown)} not understood (listed in {out / UNKNOWN})")
    for f, n, text in imported.unknown[:SHOWN]:
        print(f"  not understood: {f}:{n}: {text[:120]}", file=sys.stderr)
    for note in imported.notes:
        print(f"  note: {note}")
    print("recipients: " + ", ".join(f"{k} {n}" for k, n in verdict.counts.items()))
    for g, name in zip(verdict.guarantees, verdict.case_names()):
        print(f"  {'ok  ' if g.met else 'FAIL'} {verdict_line(g, name, width=100)}")
    print(f"report written to {out}/report.md (and report.html, verdict.json, events.jsonl)")
    return 0 if verdict.ok else 1
