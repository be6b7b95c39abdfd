"""A served feed's filter chain: real clamd and spamd (``--clamd``, ``--spamd``).

The scenario says *what* a feed does (virus scan, spam levels and their
actions); where a machine's clamd and spamd listen is a property of that
machine, like its certificates, so the addresses come from the command
line and override the scenario's scanner choice:

* ``--clamd ADDR:PORT`` scans with clamd there (INSTREAM), ``--spamd
  ADDR:PORT`` scores with spamd there (REPORT), for the served host's
  smtp-feed role (the scenario keeps the built-in engines, the only ones
  the simulation can run, so one file serves both);
* live, the chain costs what the daemons take (no modelled service times:
  those are the simulation's stand-in for them);
* both daemons must answer PING before anything listens: a feed whose
  scanner is down would defer every message (451 4.7.1), so an
  unreachable one is a start-up error, exit 2.
"""
from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass

from mta import roles as mroles
from sim.live.listen import Endpoint
from sim.wiring import HostPlan

#: Seconds a daemon has to answer PING at start-up.
PING_TIMEOUT = 10.0


class FilterSetupError(ValueError):
    """The options and the scenario's feed do not fit, or a daemon does not
    answer; the message names the option."""


@dataclass(frozen=True)
class FilterDaemons:
    """Where the served feed's real scanners listen (None: built-in)."""

    clamd: Endpoint | None = None
    spamd: Endpoint | None = None

    def __bool__(self) -> bool:
        return self.clamd is not None or self.spamd is not None


def use_daemons(plan: HostPlan, daemons: FilterDaemons) -> None:
    """Rebuild ``plan``'s feed chain for live use: the daemons of
    ``daemons`` (built-in engines otherwise), at their own cost.  Raises
    :class:`FilterSetupError` when an option has no feed (or no spam
    check) to serve."""
    feed = next((s.config for s in plan.servers if isinstance(s.config, mroles.SmtpFeed)), None)
    if feed is None:
        if daemons:
            option = "--clamd" if daemons.clamd is not None else "--spamd"
            raise FilterSetupError(f"{option}: {plan.name} runs no smtp-feed role")
        return
    if daemons.spamd is not None and not feed.spam.enabled:
        raise FilterSetupError(f"--spamd: the spam check of {plan.name}'s feed is off "
                               "(spam: {enabled: true} in the scenario)")
    changes: dict = {"modelled_costs": False}
    if daemons.clamd is not None:
        changes.update(virus_scanner="clamd", clamd_address=str(daemons.clamd))
    if daemons.spamd is not None:
        changes.update(spam_scorer="spamd", spamd_address=str(daemons.spamd))
    plan.content_filter = dataclasses.replace(feed, **changes).build_filters()


async def check_daemons(plan: HostPlan, daemons: FilterDaemons) -> None:
    """PING each daemon the chain uses; raises :class:`FilterSetupError`
    naming the option of one that does not answer."""
    chain = plan.content_filter
    checks = []
    if daemons.clamd is not None:
        checks.append(("--clamd", daemons.clamd, chain.scanner.ping))
    if daemons.spamd is not None:
        checks.append(("--spamd", daemons.spamd, chain.scorer.ping))
    for option, where, ping in checks:
        try:
            ok = await asyncio.wait_for(ping(), PING_TIMEOUT)
        except asyncio.TimeoutError:
            ok = False
        if not ok:
            daemon = option[2:]
            raise FilterSetupError(f"{option} {where}: {daemon} does not answer PING "
                                   f"(is {daemon} running there?)")
