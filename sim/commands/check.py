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
from sim.commands.run import COUNT_KEYS, run_file
from sim.commands.validate import scenario_files
from sim.pipeline import RunResult


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("check", help="run every scenario found and gate on the expectations",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("paths", nargs="+", metavar="PATH", help="scenario files or folders")
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML here")
    p.add_argument("--out", metavar="DIR", default="reports",
                   help="each scenario's report goes to DIR/<name>/ (default reports)")
    p.add_argument("--seed", type=int, help="seed for every scenario instead of the files'")
    return p


def case_names(result: RunResult) -> list[str]:
    """One name per expectation: the guarantee ID, numbered when repeated."""
    ids = [e.guarantee for e in result.expectations]
    seen: dict[str, int] = {}
    out = []
    for gid in ids:
        seen[gid] = seen.get(gid, 0) + 1
        out.append(gid if ids.count(gid) == 1 else f"{gid}[{seen[gid]}]")
    return out


def failure_text(result: RunResult, index: int) -> str:
    """Why an expectation is not met, with the counterexample timelines."""
    from sim.report.write import fmt_t, timeline

    e = result.expectations[index]
    lines = [f"{result.scenario.name}: {e.guarantee} expected {e.expected}, the check says "
             f"{e.status}{'' if e.decided else ' (undecided)'}: {e.detail}"]
    for n, c in enumerate(e.counterexamples[:5], 1):
        lines.append(f"counterexample {n}: {c.get('why', '')}")
        for d in timeline(result.events, c)[:30]:
            rest = " ".join(f"{k}={d[k]}" for k in sorted(d)
                            if k not in ("t", "host", "kind") and d[k] not in (None, "", [], {}))
            lines.append(f"  {fmt_t(d['t']):>16}  {d['host']:<24} {d['kind']:<20} {rest[:140]}")
    if len(e.counterexamples) > 5:
        lines.append(f"... {len(e.counterexamples) - 5} more counterexamples in the report")
    return "\n".join(lines)


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
        name = result.scenario.name
        failures = sum(not e.met for e in result.expectations)
        suite = ET.SubElement(root, "testsuite", name=name, tests=str(len(result.expectations)),
                              failures=str(failures), errors="0",
                              time=f"{result.wall_time:.3f}")
        props = ET.SubElement(suite, "properties")
        for key in ("seed", "sim_time", "events") + COUNT_KEYS:
            value = {"seed": result.seed, "sim_time": result.sim_time,
                     "events": len(result.events)}.get(key, result.counts.get(key, 0))
            ET.SubElement(props, "property", name=key, value=str(value))
        for i, (cname, e) in enumerate(zip(case_names(result), result.expectations)):
            case = ET.SubElement(suite, "testcase", classname=name, name=cname)
            if not e.met:
                fail = ET.SubElement(case, "failure", message=e.detail[:500])
                fail.text = failure_text(result, i)
    ET.indent(root)
    return ET.ElementTree(root)


def run(args: argparse.Namespace) -> int:
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
        met = result.met
        print(f"{'PASS' if met else 'FAIL'} {result.scenario.name} "
              f"({format_duration(result.sim_time)} simulated, {result.wall_time:.2f} s)")
        for cname, e in zip(case_names(result), result.expectations):
            print(f"  {'ok  ' if e.met else 'FAIL'} {cname}: expected {e.expected}, "
                  f"{e.status if e.decided else 'undecided'}: {' '.join(e.detail.split())[:100]}")
    if args.junit:
        junit_xml(results).write(args.junit, encoding="utf-8", xml_declaration=True)
    if any(r is None for _, r in results):
        return 2
    return 0 if all(r.met for _, r in results if r is not None) else 1
