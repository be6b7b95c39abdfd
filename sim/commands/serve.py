"""``mxsim serve SCENARIO --host NAME``: run one host's roles on real sockets.

Prints one ``listening ...`` line per server when ready, then ``serving``.
The queue is durable in ``--state`` (default ``reports/<scenario>/<host>/``):
a message is acknowledged only once it is committed, and a restart after a
crash delivers everything acknowledged.  Events go to ``--events`` (default
``STATE/events.jsonl``) in the simulation's format, so ``mxsim report
STATE`` judges a live run, and as Postfix-style lines to ``STATE/maillog``.
Mail filed into mailboxes goes to Maildirs in ``STATE/mail/`` (served by the
host's POP3 server, if it has one).  A feed scans with real clamd and spamd
given ``--clamd``/``--spamd`` (they must answer before anything listens).  SIGTERM or SIGINT: stop accepting, finish the
transactions in progress, exit 0.  Exit 2: the scenario, the host or an
option is wrong, or an address cannot be bound (nothing is written then).
"""
from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

from mta.dns.live import LiveResolver
from sim.cli import UsageError
from sim.commands.paths import output_dir, output_file
from sim.convert import Unsupported, describe
from sim.events import GuaranteeExpected, RunStarted, ScenarioDescribed
from sim.live.eventlog import Fanout, LiveLog
from sim.live.filters import FilterDaemons, FilterSetupError, check_daemons, use_daemons
from sim.live.host import DEFAULT_GRACE, LiveHost, delivers_locally, maildir
from sim.live.maillog import Maillog
from sim.live.listen import (DEFAULT_ADDRESS, DNS_PORT, Endpoint, ListenError, check_bindable,
                             parse_endpoint, parse_listen)
from sim.pipeline import load, planned_expectations
from sim.runner import RUNNER_HOST
from sim.scenario.loader import ScenarioError
from sim.wiring import WiringError, plan_hosts


#: The Postfix-style log written next to the state (sim.live.maillog).
MAILLOG = "maillog"


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("serve", help="run one scenario host's roles on real sockets",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("scenario", metavar="SCENARIO", help="scenario file (YAML)")
    p.add_argument("--host", required=True, metavar="NAME", help="the scenario host to run")
    p.add_argument("--listen", action="append", default=[], metavar="PORT=ADDR:PORT",
                   help="bind the scenario's PORT to ADDR:PORT (port 0: any free port); "
                        f"unnamed ports listen on {DEFAULT_ADDRESS} at their own number; "
                        f"{DNS_PORT}=ADDR:PORT binds the built-in zone server")
    p.add_argument("--state", metavar="DIR",
                   help="durable queue and greylist folder (default reports/<scenario>/<host>/)")
    p.add_argument("--resolver", metavar="ADDR:PORT",
                   help="a real DNS server instead of the scenario's zones")
    p.add_argument("--events", metavar="FILE", help="event log (default STATE/events.jsonl)")
    p.add_argument("--tls-cert", metavar="PEM", help="certificate chain: SMTP servers offer "
                   "STARTTLS (with --tls-key)")
    p.add_argument("--tls-key", metavar="PEM", help="the certificate's private key")
    p.add_argument("--clamd", metavar="ADDR:PORT", help="the feed scans for viruses with "
                   "clamd there instead of the built-in scanner")
    p.add_argument("--spamd", metavar="ADDR:PORT", help="the feed scores spam with spamd there "
                   "instead of the built-in scorer")
    p.add_argument("--grace", type=float, default=DEFAULT_GRACE, metavar="SECONDS",
                   help="how long a stop waits for transactions in progress "
                        f"(default {DEFAULT_GRACE:g})")
    return p


def run(args: argparse.Namespace) -> int:
    try:
        sc = load(args.scenario)
    except ScenarioError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    names = [h.name for h in sc.hosts]
    if args.host not in names:
        raise UsageError(f"--host {args.host}: no such host in {args.scenario} "
                         f"(hosts: {', '.join(names)})")
    try:
        daemons = FilterDaemons(
            clamd=parse_endpoint(args.clamd, "--clamd", allow_zero=False) if args.clamd else None,
            spamd=parse_endpoint(args.spamd, "--spamd", allow_zero=False) if args.spamd else None)
    except ListenError as exc:
        raise UsageError(str(exc)) from None
    try:
        plan = plan_hosts(sc)[args.host]
        use_daemons(plan, daemons)
    except FilterSetupError as exc:
        raise UsageError(f"{args.scenario}: {exc}") from None
    except (WiringError, Unsupported) as exc:
        raise UsageError(f"{args.scenario}: cannot run: {exc}") from None
    if not plan.servers and not plan.needs_queue:
        raise UsageError(f"--host {args.host}: the host runs no role in {args.scenario}")
    if args.grace < 0:
        raise UsageError(f"--grace {args.grace:g}: cannot be negative")
    try:
        listen = parse_listen(args.listen)
        resolver_at = parse_endpoint(args.resolver, "--resolver", allow_zero=False) \
            if args.resolver else None
    except ListenError as exc:
        raise UsageError(str(exc)) from None
    tls = _tls(args.tls_cert, args.tls_key)
    ports = {s.port for s in plan.servers}
    unknown = sorted(set(listen) - ports - ({DNS_PORT} if _zones(sc, resolver_at) else set()))
    if unknown:
        raise UsageError(f"--listen {unknown[0]}=...: {args.host} has no server on port "
                         f"{unknown[0]} (its ports: {', '.join(map(str, sorted(ports)))})")
    if daemons:
        try:
            asyncio.run(check_daemons(plan, daemons))
        except FilterSetupError as exc:
            raise UsageError(str(exc)) from None
    state = Path(args.state) if args.state else Path("reports") / sc.name / args.host
    output_dir(state, "--state")
    events = output_file(args.events, "--events") if args.events else state / "events.jsonl"
    try:
        for port in sorted(ports):
            check_bindable(listen.get(port, Endpoint(DEFAULT_ADDRESS, port)))
        if _zones(sc, resolver_at) and DNS_PORT in listen:
            check_bindable(listen[DNS_PORT], socket.SOCK_DGRAM)
    except ListenError as exc:
        raise UsageError(str(exc)) from None
    created = _make_dirs(state, events)
    if delivers_locally(plan):
        _check_mailboxes(maildir(plan, state), created)
    had_maillog = (state / MAILLOG).exists()
    try:
        log = LiveLog(events)
    except OSError as exc:
        _remove(created)
        raise UsageError(f"--events {events}: {exc.strerror or exc}") from None
    maillog = Maillog(state / MAILLOG)
    prologue = _prologue(sc) if log.fresh else []
    try:
        rc = asyncio.run(_serve(sc, plan, state, log, maillog, listen, resolver_at, args.grace,
                                prologue, created, tls))
    finally:
        log.close()
        maillog.close()
    if rc == 2 and not had_maillog:
        (state / MAILLOG).unlink(missing_ok=True)
    return rc


def _zones(sc, resolver_at) -> bool:
    """Whether the built-in zone server runs (the scenario has zones and no
    real resolver was given)."""
    return sc.dns is not None and resolver_at is None


def _prologue(sc) -> list:
    """The first events of a live log, as a simulated run writes them."""
    now = time.time()
    out = [RunStarted(t=now, host=RUNNER_HOST, scenario=sc.name, seed=sc.seed)]
    out += [GuaranteeExpected(t=now, host=RUNNER_HOST, guarantee=e.guarantee,
                              expected=e.expected, params=e.params, why=e.why)
            for e in planned_expectations(sc)]
    out.append(ScenarioDescribed(t=now, host=RUNNER_HOST, description=sc.description,
                                 topology=describe(sc)))
    return out


def _make_dirs(state: Path, events: Path) -> list[Path]:
    """Make the missing folders and prove the state folder takes files;
    returns what was made (outermost first).  Raises UsageError, having
    removed what it made, when the file system says no (a read-only or
    virtual file system passes the permission check and still refuses)."""
    made: list[Path] = []
    option, candidate = "--state", state
    try:
        for option, folder in (("--state", state), ("--events", events.parent)):
            for candidate in reversed([folder, *folder.parents]):
                if not candidate.exists():
                    candidate.mkdir()
                    made.append(candidate)
        option, candidate = "--state", state
        with tempfile.TemporaryFile(dir=state):
            pass
    except OSError as exc:
        _remove(made)
        raise UsageError(f"{option}: cannot write in {candidate}: "
                         f"{exc.strerror or exc}") from None
    return made


def _check_mailboxes(disk, created: list[Path]) -> None:
    """The mailbox folder takes files (mail is filed there while serving,
    so refuse now, not at the first delivery); raises UsageError, having
    removed what this start made."""
    made = not disk.root.exists()
    try:
        disk.check()
    except OSError as exc:
        if made:
            shutil.rmtree(disk.root, ignore_errors=True)
        _remove(created)
        raise UsageError(f"--state: mailboxes: {exc.strerror or exc}") from None


def _remove(created: list[Path]) -> None:
    for path in reversed(created):
        shutil.rmtree(path, ignore_errors=True)


def _tls(cert: str | None, key: str | None):
    """The server SSL context from ``--tls-cert``/``--tls-key``, or None."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise UsageError("--tls-cert and --tls-key go together")
    import ssl
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"--tls-cert {cert} --tls-key {key}: {exc}") from None
    return context


async def _serve(sc, plan, state: Path, log: LiveLog, maillog: Maillog, listen, resolver_at, grace: float,
                 prologue: list, created: list[Path], tls) -> int:
    zone_server = None
    lines = []
    if resolver_at is not None:
        resolver = LiveResolver([resolver_at.address], port=resolver_at.port)
    elif sc.dns is not None:
        from sim.live.zone_server import ZoneServer
        from sim.world.zones import ZoneSet
        zone_server = ZoneServer(ZoneSet.from_text(sc.dns.zones))
        where = listen.get(DNS_PORT, Endpoint(DEFAULT_ADDRESS, 0))
        address, port = await zone_server.start(where.address, where.port)
        resolver = LiveResolver([address], port=port)
        lines.append(f"listening dns {Endpoint(address, port)} (zones of {sc.name})")
    else:
        resolver = LiveResolver(None)
    for event in prologue:
        log.emit(event)
    host = LiveHost(plan, state, Fanout(log, maillog), resolver, listen=listen, grace=grace, tls=tls)
    try:
        ready = await host.start()
    except OSError as exc:
        # Bound a moment ago, taken since: undo what this start wrote.
        await host.drain()
        if zone_server is not None:
            zone_server.close()
        if prologue:
            log.close()
            Path(log.path).unlink(missing_ok=True)
        _remove(created)
        print(f"mxsim: cannot listen: {exc.strerror or exc}", file=sys.stderr)
        return 2
    for line in lines + [r.line() for r in ready]:
        print(line)
    print(f"serving {plan.name}: {len(ready)} server{'s' if len(ready) != 1 else ''}, {host.recovered} messages recovered "
          f"(state {state}, events {log.path})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await host.drain()
    if zone_server is not None:
        zone_server.close()
    print(f"stopped {plan.name}", flush=True)
    return 0
