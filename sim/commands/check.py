"""``mxsim check PATH... [--junit FILE]``: run every scenario found; CI gate.

A folder means its ``*.yaml`` files.  Prints one line per scenario and one
per expectation, writes JUnit XML (one test case per expectation, counts as
properties) when asked, and exits 0 when every expectation is met, 1 when
one is not, 2 when a file is invalid or cannot run.
"""
from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from mta.units import format_duration
from sim.commands.run import run_file
from sim.commands.validate import scenario_files
from sim.commands.paths import output_dir, output_file, prepare_file
from sim.pipeline import RunResult
from sim.report.failures import failure_text, verdict_line


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("check", help="run every scenario found and gate on the expectations",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("paths", nargs="+", metavar="PATH", help="scenario files or folders")
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML here")
    p.add_argument("--out", metavar="DIR", default="reports",
                   help="each scenario's report goes to DIR/<name>/ (default reports)")
    p.add_argument("--seed", type=int, help="seed for every scenario instead of the files'")
    return p


def junit_xml(results: list[tuple[str, RunResult | None]]) -> ET.ElementTree:
    """JUnit XML: a test suite per scenario, a test case per expectation."""
    root = ET.Element("testsuites", name="mxsim")
    for path, result in results:
        if result is None:
            suite = ET.SubElement(root, "testsuite", name=Path(path).stem, tests="1",
                                  failures="0", errors="1")
            case = ET.SubElement(suite, "testcase", classname=Path(path).stem, name="scenario")
            ET.SubElement(case, "error", message=f"{path} is invalid or cannot run")
            continue
        name, v = result.scenario.name, result.verdict
        failures = sum(not g.met for g in v.guarantees)
        suite = ET.SubElement(root, "testsuite", name=name, tests=str(len(v.guarantees)),
                              failures=str(failures), errors="0",
                              time=f"{result.wall_time:.3f}")
        props = ET.SubElement(suite, "properties")
        for key, value in result.properties():
            ET.SubElement(props, "property", name=key, value=str(value))
        for i, (cname, g) in enumerate(zip(v.case_names(), v.guarantees)):
            case = ET.SubElement(suite, "testcase", classname=name, name=cname)
            if not g.met:
                fail = ET.SubElement(case, "failure", message=g.detail[:500])
                fail.text = failure_text(v, i, result.events)
    ET.indent(root)
    return ET.ElementTree(root)


def run(args: argparse.Namespace) -> int:
    junit = output_file(args.junit, "--junit") if args.junit else None
    output_dir(args.out, "--out")
    files = scenario_files(args.paths)
    if not files:
        print(f"mxsim check: no scenario files in {' '.join(args.paths)}", file=sys.stderr)
        return 2
    results: list[tuple[str, RunResult | None]] = []
    for path in files:
        result = run_file(str(path), seed=args.seed, out_root=args.out)
        results.append((str(path), result))
        if result is None:
            print(f"INVALID {path}")
            continue
        v = result.verdict
        print(f"{'PASS' if v.ok else 'FAIL'} {result.scenario.name} "
              f"({format_duration(result.sim_time)} simulated, {result.wall_time:.2f} s)")
        for cname, g in zip(v.case_names(), v.guarantees):
            print(f"  {'ok  ' if g.met else 'FAIL'} {verdict_line(g, cname, width=100)}")
    if junit is not None:
        junit_xml(results).write(prepare_file(junit), encoding="utf-8", xml_declaration=True)
    if any(r is None for _, r in results):
        return 2
    return 0 if all(r.met for _, r in results if r is not None) else 1
