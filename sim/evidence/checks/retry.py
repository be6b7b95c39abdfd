"""retry-discipline: deferred mail retried as the MTA a host models documents.

The bounds come from :mod:`sim.evidence.retry_bounds`, the judge's own table
of the real MTAs' documented schedules, applied to what the scenario says
each host runs (preset and settings, filled in by :mod:`sim.evidence.derive`);
never from the component's schedule objects.
"""
from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict

from mta import events as E
from sim.evidence.checks.base import check, cx, undecidable, verdict
from sim.evidence.checks.helpers import delivery_rounds, is_give_up
from sim.evidence.checks.params.retry import RetryParams
from sim.evidence.lifecycle import RecipientLife, domain_of, is_null_sender
from sim.evidence.model import Evidence
from sim.evidence.retry_bounds import RetryModel


class _Releases:
    """Release times per (host, released domain), to find a copy's releases
    by its domain's suffixes instead of scanning every release of the host
    for every copy (a queueing server for hundreds of dial-up domains)."""

    def __init__(self, events: list[E.Released]) -> None:
        self._times: dict[tuple[str, str], list[float]] = defaultdict(list)
        for r in events:                  # in log order, so each list is sorted
            self._times[(r.host, r.domain.lower().rstrip("."))].append(r.t)
        self._hosts = {host for host, _ in self._times}
        self._merged: dict[tuple[str, str], list[float]] = {}

    def covering(self, host: str, domain: str, since: float) -> list[float]:
        """Times (sorted) of releases on ``host`` at or after ``since`` of
        ``domain`` or of a domain above it."""
        if host not in self._hosts:
            return []
        # Per (host, domain), the releases of every suffix merged once, not
        # per copy (thousands of copies share a dial-up customer's domain).
        merged = self._merged.get((host, domain))
        if merged is None:
            labels = domain.split(".")
            merged = []
            for i in range(len(labels)):
                merged.extend(self._times.get((host, ".".join(labels[i:])), ()))
            merged.sort()
            self._merged[(host, domain)] = merged
        return merged[bisect_left(merged, since):] if merged else []


def _first_failures(lives: list[RecipientLife]) -> dict[tuple[str, str], float]:
    """(host, domain) -> the first deferral there: where Exim's per-host
    retry record starts counting toward the final cutoff."""
    out: dict[tuple[str, str], float] = {}
    for lf in lives:
        if lf.deferrals:
            key = (lf.host, domain_of(lf.rcpt).lower())
            out[key] = min(out.get(key, lf.deferrals[0].t), lf.deferrals[0].t)
    return out


@check("retry-discipline")
def retry_discipline(ev: Evidence, params: RetryParams):
    """Deferred copies are retried neither sooner nor later than the MTA the
    host models documents, and given up neither before nor long after
    their lifetime.

    Per queued copy (host, msg, rcpt), with the host's model (see
    :mod:`sim.evidence.retry_bounds`; ``against: rfc5321`` replaces it by
    RFC 5321's floor):

    * no gap between delivery rounds below the model's minimum (the first
      retry may have its own, e.g. Sendmail's next queue run), less
      ``tolerance``, except the round a Released (ETRN, finger, probe) for
      the copy's domain started within ``round_slack``;
    * a held copy is not tried before its first release; from then on its
      rounds follow the same minimum;
    * while a copy not held is alive and inside its lifetime, no pause
      (queueing to first round, between rounds, last round to its fate or
      the end of the run) above the model's maximum plus ``round_slack``;
    * a give-up bounce (4xx-based or naming expiry) comes no sooner than the
      lifetime (per domain if the scenario says so; a bounce's own lifetime
      for ``<>`` copies; from the destination's first failure for Exim), and
      no later than one maximum pause after it; nor is a copy still queued
      that long after its lifetime.

    ``judged`` counts the copies whose retries were exercised: deferred at
    least once, given up, or released.
    """
    gid = "retry-discipline"
    tol, slack = params.tolerance, params.round_slack
    lives = [lf for lf in ev.lifecycles if lf.queued_t is not None]
    if params.hosts is not None:
        judged_hosts = set(params.hosts)
        lives = [lf for lf in lives if lf.host in judged_hosts]
    if not lives:
        return undecidable(gid, "no Queued events" + (f" on hosts {sorted(params.hosts)}"
                                                      if params.hosts else "") + " in the log")
    releases = _Releases(ev.of(E.Released))
    first_failure = _first_failures(lives)
    models: dict[str, RetryModel] = {}
    domains: dict[str, str] = {}           # rcpt -> its domain (many copies per address)
    lifetimes: dict[tuple[str, str, bool], float] = {}
    cxs: list[dict] = []
    exercised = 0
    end = ev.end
    for lf in lives:
        m = models.get(lf.host)
        if m is None:
            m = models[lf.host] = params.model_for(lf.host)
        dom = domains.get(lf.rcpt)
        if dom is None:
            dom = domains[lf.rcpt] = domain_of(lf.rcpt).lower()
        queued_t, deferrals = lf.queued_t, lf.deferrals
        rel = releases.covering(lf.host, dom, queued_t - tol)
        rounds = delivery_rounds(lf)
        fe = lf.fate_event
        gave_up = isinstance(fe, E.Bounced) and is_give_up(fe)
        if deferrals or gave_up or (lf.held and rel):
            exercised += 1
        if lf.held:
            early = [t for t in rounds if not rel or t < rel[0] - tol]
            if early:
                cxs.append(cx(f"a held copy was tried at {early[0]:g} s before any release "
                              f"of {dom}", times=[queued_t, early[0]],
                              cause="held-tried-before-release", **_rounds_of(lf)))
        for i, (a, b) in enumerate(zip(rounds, rounds[1:]) if len(rounds) > 1 else ()):
            if any(a < r <= b + tol and b - r <= slack for r in rel):
                continue        # the release, not the schedule, started this round
            floor = m.first_gap if i == 0 else m.min_gap
            if b - a < floor - tol:
                after = next((r for r in reversed(rel) if r <= a), None)
                since = f", {a - after:g} s after a release" if after is not None else ""
                cxs.append(cx(f"retried after {b - a:g} s{since}, below the {m.name} minimum "
                              f"of {floor:g} s", times=[a, b], cause="retried-too-soon",
                              **_rounds_of(lf)))
        null = is_null_sender(lf.mail_from)
        life = lifetimes.get((lf.host, dom, null))
        if life is None:
            life = lifetimes[(lf.host, dom, null)] = m.lifetime_for(dom, null)
        start = queued_t
        if m.lifetime_per_destination and not null and deferrals:
            start = deferrals[0].t        # the per-message reading of a host's cutoff
        stop = lf.fate_t if lf.fate_t is not None else end
        if not lf.held and m.max_gap is not None:
            marks = [queued_t] + [r for r in rounds if r >= queued_t] + [stop]
            for a, b in zip(marks, marks[1:]):
                if a >= queued_t + life:
                    break
                b = min(b, queued_t + life)     # only while the lifetime lasts
                if b - a > m.max_gap + slack:
                    cxs.append(cx(f"no delivery attempt for {b - a:g} s while queued, above "
                                  f"the {m.name} maximum of {m.max_gap:g} s", times=[a, b],
                                  events=lf.events, cause="pause-too-long",
                                  msg=lf.msg, trace=lf.trace, rcpt=lf.rcpt, hosts=[lf.host]))
                    break
        floor_from = queued_t
        if m.lifetime_per_destination and not null:
            floor_from = first_failure.get((lf.host, dom), queued_t)
        if gave_up or lf.fate_t is None:
            _judge_give_up(lf, m, life, start, stop, gave_up, floor_from, tol, slack, cxs)
    names = ", ".join(f"{h} {m.name}" for h, m in sorted(models.items()))
    return verdict(gid, cxs,
                   ok=f"{exercised} of {len(lives)} queued copies deferred, given up or "
                      f"released, all within the documented retry discipline ({names})",
                   bad=f"{{n}} retry-discipline violations against the documented "
                       f"schedules ({names})",
                   judged=exercised, unit="copies whose retries were exercised (deferred, "
                                          "given up or released)")


def _rounds_of(lf: RecipientLife) -> dict:
    """The counterexample fields of a copy's rounds (built only for a finding)."""
    return dict(msg=lf.msg, trace=lf.trace, rcpt=lf.rcpt, hosts=[lf.host],
                events=[*lf.attempts, *lf.deferrals])


def _judge_give_up(lf: RecipientLife, m: RetryModel, life: float, start: float, stop: float,
                   gave_up: bool, floor_from: float, tol: float, slack: float,
                   cxs: list[dict]) -> None:
    """No give-up before the lifetime (counted from ``floor_from``), nor long
    after it, nor a copy still queued long after it (called for copies given
    up or still queued)."""
    if gave_up and lf.fate_t is not None and lf.fate_t - floor_from < life - tol:
        cxs.append(cx(f"gave up after {lf.fate_t - lf.queued_t:g} s in the queue, before the "
                      f"{m.name} lifetime of {life:g} s", times=[lf.queued_t, lf.fate_t],
                      cause="gave-up-early", **_copy_of(lf)))
    if m.give_up_within is None:
        return
    latest = start + life + m.give_up_within + slack
    if (gave_up or lf.fate_t is None) and stop > latest:
        what = "gave up" if gave_up else "still queued"
        cxs.append(cx(f"{what} {stop - start - life:g} s after the {m.name} lifetime of "
                      f"{life:g} s ended, more than one maximum pause ({m.give_up_within:g} s)",
                      times=[lf.queued_t, stop], cause="gave-up-late", **_copy_of(lf)))


def _copy_of(lf: RecipientLife) -> dict:
    """The counterexample fields of a copy and its whole story."""
    return dict(msg=lf.msg, trace=lf.trace, rcpt=lf.rcpt, hosts=[lf.host], events=lf.events)
