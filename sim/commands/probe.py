"""``mxsim probe HOST:PORT [--domain D] [--junit FILE]``: judge any SMTP server from outside.

Runs the guarantee probes of :mod:`mta.probes` (banner, HELO, reply codes,
enhanced codes, SIZE at MAIL, open relay with nmap's 16 forms, AUTH before
relaying (judged on a STARTTLS session when the server offers STARTTLS;
certificates are not verified unless ``--tls-ca`` is given), AUTH offered
over cleartext, the recipient limit, ETRN, greylisting, PIPELINING, and with
``--idle`` the idle timeout) and prints a verdict table.  Relay attempts
stop at RCPT (RSET follows); DATA is never sent.  Exit status: 0 no probe
failed, 1 a probe failed, 2 the target cannot be reached, is not SMTP or
went away mid-dialogue, or an argument is bad.
"""
from __future__ import annotations

import argparse
import asyncio
import secrets
import ssl
import xml.etree.ElementTree as ET

from mta.addresses import NMAP_DOMAIN, valid_domain
from mta.probes.client import TargetError
from mta.probes.findings import Finding
from mta.probes.judge import RFC_MIN_RECIPIENTS
from mta.probes.run import ProbeOptions, probe_target
from sim.cli import UsageError
from sim.commands.paths import output_file, prepare_file
from sim.commands.report import print_out


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("probe", help="probe an SMTP server's guarantees from outside",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("target", metavar="HOST:PORT", help="the server, e.g. 127.0.0.1:25")
    p.add_argument("--domain", metavar="D", help="a domain the server takes mail for "
                   "(enables the recipient-limit, greylisting and extra relay probes)")
    p.add_argument("--rcpt", metavar="ADDR", help="a valid recipient (default postmaster@D)")
    p.add_argument("--helo", default="probe.mxsim.test", metavar="NAME",
                   help="the name the probe gives in EHLO")
    p.add_argument("--foreign", default=NMAP_DOMAIN, metavar="DOMAIN",
                   help=f"the foreign domain of the relay attempts (default {NMAP_DOMAIN})")
    p.add_argument("--recipients", type=int, default=RFC_MIN_RECIPIENTS + 1, metavar="N",
                   help="recipients sent to find the limit (default %(default)s)")
    p.add_argument("--greylist-wait", type=float, metavar="SECONDS",
                   help="after a 4xx first attempt, retry after this long")
    p.add_argument("--idle", type=float, metavar="SECONDS",
                   help="measure the idle timeout, waiting at most this long")
    p.add_argument("--expect-banner", metavar="TEXT",
                   help="a word the server's own banner has (else: interception)")
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="seconds to wait for each reply (default %(default)s)")
    p.add_argument("--tls-ca", metavar="PEM", help="verify STARTTLS certificates against "
                   "this CA file (default: not verified; the output says so)")
    p.add_argument("--junit", metavar="FILE", help="write the findings as JUnit XML")
    return p


def parse_target(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"{text!r}: expected HOST:PORT, e.g. 127.0.0.1:25")
    return host, int(port)


def options(args: argparse.Namespace) -> ProbeOptions:
    """The probe options from the command line (bad values: UsageError)."""
    host, port = parse_target(args.target)
    for name in ("domain", "helo", "foreign"):
        value = getattr(args, name)
        if value is not None and not valid_domain(value.lower()):
            raise UsageError(f"--{name} {value!r}: expected a domain name")
    if args.rcpt is not None and "@" not in args.rcpt:
        raise UsageError(f"--rcpt {args.rcpt!r}: expected an address, user@domain")
    if args.recipients < 1:
        raise UsageError(f"--recipients {args.recipients}: expected at least 1")
    for name in ("greylist_wait", "idle", "timeout"):
        value = getattr(args, name)
        if value is not None and not value > 0:
            raise UsageError(f"--{name.replace('_', '-')} {value:g}: expected a positive "
                             "number of seconds")
    if args.tls_ca is not None:
        try:
            ssl.create_default_context(cafile=args.tls_ca)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"--tls-ca {args.tls_ca}: {getattr(exc, 'strerror', None) or exc}"
                             ) from None
    return ProbeOptions(host=host, port=port, tls_ca=args.tls_ca, domain=args.domain, rcpt=args.rcpt,
                        helo=args.helo, foreign=args.foreign, recipients=args.recipients,
                        greylist_wait=args.greylist_wait, idle=args.idle,
                        expect_banner=args.expect_banner, token=secrets.token_hex(4),
                        reply_timeout=args.timeout)


def table(target: str, findings: list[Finding]) -> str:
    """The verdict table printed after a probe run."""
    rows = [("probe", "result", "summary")] + [(f.probe, f.status.upper() if f.failed
                                                 else f.status, f.summary) for f in findings]
    width = [max(len(r[i]) for r in rows) for i in range(2)]
    lines = [f"mxsim probe {target}"]
    lines += ["  " + r[0].ljust(width[0]) + "  " + r[1].ljust(width[1]) + "  " + r[2]
              for r in rows]
    failed = sum(f.failed for f in findings)
    passed = sum(f.status == "pass" for f in findings)
    lines.append(f"{passed} passed, {failed} failed, "
                 f"{len(findings) - passed - failed} not judged")
    return "\n".join(lines)


def junit_xml(target: str, findings: list[Finding]) -> ET.ElementTree:
    """One test case per probe: a failure for ``fail``, skipped otherwise
    unless it passed; the evidence in ``system-out``."""
    suite = ET.Element("testsuite", name=f"mxsim probe {target}", tests=str(len(findings)),
                       failures=str(sum(f.failed for f in findings)),
                       skipped=str(sum(f.status in ("skip", "info") for f in findings)))
    for f in findings:
        case = ET.SubElement(suite, "testcase", classname="mxsim.probe", name=f.probe)
        if f.failed:
            ET.SubElement(case, "failure", message=f.summary).text = "\n".join(f.evidence)
        elif f.status != "pass":
            ET.SubElement(case, "skipped", message=f"{f.status}: {f.summary}")
        if f.evidence:
            ET.SubElement(case, "system-out").text = "\n".join(f.evidence)
    return ET.ElementTree(suite)


def run(args: argparse.Namespace) -> int:
    opts = options(args)
    junit = output_file(args.junit, "--junit") if args.junit else None
    try:
        findings = asyncio.run(probe_target(opts))
    except TargetError as exc:
        raise UsageError(str(exc)) from None
    print_out(table(args.target, findings))
    if junit is not None:
        junit_xml(args.target, findings).write(prepare_file(junit), encoding="utf-8",
                                               xml_declaration=True)
    return 1 if any(f.failed for f in findings) else 0
