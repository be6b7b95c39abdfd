"""Dial-up customer checks (seed 004): no bounce within the lifetime,
connectivity probes, finger SMTP-on-Demand, ETRN flush."""
from __future__ import annotations

from mta import events as E
from sim.evidence.checks.base import check, cx, undecidable, verdict
from sim.evidence.checks.helpers import node_domain
from sim.evidence.checks.params.ondemand import DialupNoBounceParams, ProbeParams, ReleaseParams
from sim.evidence.lifecycle import in_domain
from sim.evidence.model import Evidence


@check("dialup-no-bounce")
def dialup_no_bounce(ev: Evidence, params: DialupNoBounceParams):
    """Mail for the dial-up customer does not bounce within the lifetime.

    Params (:class:`DialupNoBounceParams`): ``domain``, ``lifetime``,
    ``tolerance``.  Every copy for the domain that bounced, and every held
    copy that was discarded, must have been queued at least ``lifetime``
    before.
    """
    gid = "dialup-no-bounce"
    domain, lifetime, tol = params.domain, params.lifetime, params.tolerance
    lives = [lf for lf in ev.lifecycles if in_domain(lf.rcpt, domain)
             and lf.queued_t is not None]
    if not lives:
        return undecidable(gid, f"no mail for {domain} was queued")
    # A held copy deleted (a cleanup of old held mail) was not stored either.
    cxs = [cx(f"{'bounced' if isinstance(lf.fate_event, E.Bounced) else 'held copy discarded'} "
              f"{lf.fate_t - lf.queued_t:g} s after queueing, within the lifetime "
              f"{lifetime:g} s", msg=lf.msg, trace=lf.trace, rcpt=lf.rcpt, hosts=[lf.host],
              times=[lf.queued_t, lf.fate_t], events=lf.events)
           for lf in lives if (isinstance(lf.fate_event, E.Bounced)
                               or (lf.held and isinstance(lf.fate_event, E.Discarded)))
           and lf.fate_t - lf.queued_t < lifetime - tol]
    return verdict(gid, cxs, ok=f"{len(lives)} copies for {domain} stored without bouncing",
                   bad="{n} bounces within the queue lifetime",
                   judged=len(lives), unit="copies for the domain")


def _release_check(ev: Evidence, domain: str, triggers: list[E.Event], win: float,
                   kind_name: str) -> list[dict]:
    """For each trigger event: every copy held for the domain on its host
    then is attempted within ``win``."""
    cxs = []
    for trigger in triggers:
        t, host = trigger.t, trigger.host
        tries = ev.attempts_of(host)
        for h in ev.held_copies(host, domain, t):
            if not any(t <= x <= t + win for x in tries.get((h.msg, h.rcpt), ())):
                cxs.append(cx(f"held on {host} at the {kind_name}, not attempted within "
                              f"{win:g} s", msg=h.msg, trace=h.trace, rcpt=h.rcpt,
                              hosts=[host], times=[t], events=[trigger]))
    return cxs


@check("etrn-flush")
def etrn_flush(ev: Evidence, params: ReleaseParams):
    """ETRN on an exchanger starts delivery of what it holds for the domain;
    held mail on an exchanger without ETRN waits for its own release.

    Params (:class:`ReleaseParams`): ``exchangers``, ``domain``, ``within``.
    Each 2xx ETRN whose node covers the domain (plain,
    ``@`` with subdomains, ``#`` queue name) is followed within ``within``
    by an attempt of every copy held for the domain there; an ETRN refused
    while mail was held fails; and every attempt of a copy that was queued
    held comes within ``within`` after a Released on its host.
    """
    gid = "etrn-flush"
    exchangers, domain, win = set(params.exchangers), params.domain, params.within
    etrns = []
    for e in ev.of(E.EtrnRequest):
        if e.host in exchangers:
            node, subs = node_domain(e.argument)
            if node == domain.lower() or (subs and in_domain("x@" + domain, node)):
                etrns.append(e)
    if not etrns:
        return undecidable(gid, f"no ETRN for {domain} reached {sorted(exchangers)}")
    cxs = []
    for e in etrns:
        if not 200 <= e.code < 300 and ev.held_copies(e.host, domain, e.t):
            cxs.append(cx(f"ETRN answered {e.code} while mail for {domain} was held",
                          hosts=[e.host], times=[e.t], events=[e]))
    cxs += _release_check(ev, domain, [e for e in etrns if 200 <= e.code < 300], win, "ETRN")
    rel = ev.releases
    for lf in ev.lifecycles:
        if lf.host in exchangers and in_domain(lf.rcpt, domain) and lf.held:
            early = [a for a in lf.attempts
                     if not any(a.t - win <= r <= a.t for r in rel.get(lf.host, []))]
            if early:
                cxs.append(cx("held mail attempted without any release", msg=lf.msg,
                              trace=lf.trace, rcpt=lf.rcpt, hosts=[lf.host],
                              times=[a.t for a in early], events=early))
    return verdict(gid, cxs, ok=f"{len(etrns)} ETRN requests each started delivery",
                   bad="{n} ETRN flush failures",
                   judged=len(etrns), unit="ETRN requests")


@check("smtp-on-demand-finger")
def finger(ev: Evidence, params: ReleaseParams):
    """``finger domain@exchanger`` starts delivery of the mail held there.

    Params (:class:`ReleaseParams`): ``exchangers``, ``domain``, ``within``.
    Each finger query naming the domain is followed within
    ``within`` by an attempt of every copy held for it on that exchanger; a
    forwarding query (with ``@``) releases nothing.
    """
    gid = "smtp-on-demand-finger"
    exchangers, domain, win = set(params.exchangers), params.domain, params.within
    qs = [e for e in ev.of(E.FingerQuery) if e.host in exchangers]
    mine = [e for e in qs if e.query.strip().lower().rstrip(".") == domain.lower()]
    if not mine:
        return undecidable(gid, f"no finger query for {domain} reached {sorted(exchangers)}")
    cxs = _release_check(ev, domain, mine, win, "finger query")
    for e in qs:
        if "@" in e.query and e.released:
            cxs.append(cx(f"forwarding query {e.query!r} released {e.released} messages",
                          hosts=[e.host], times=[e.t], events=[e]))
    return verdict(gid, cxs, ok=f"{len(mine)} finger queries each started delivery",
                   bad="{n} finger failures",
                   judged=len(mine), unit="finger queries")


@check("connectivity-probe")
def connectivity_probe(ev: Evidence, params: ProbeParams):
    """Exchangers probe the customer and deliver within one probe interval
    of its link coming up, with no trigger.

    Params (:class:`ProbeParams`): ``exchangers``, ``customer``, ``domain``,
    ``probe_interval``, ``tolerance``.  For each up period of the customer's link at
    least ``probe_interval`` long, every copy held for the domain on an
    exchanger when it began is attempted within the interval.
    """
    gid = "connectivity-probe"
    exchangers, customer, domain = params.exchangers, params.customer, params.domain
    interval, tol = params.probe_interval, params.tolerance
    ups = [p for p in ev.link_periods if p.host == customer and p.state == "up"]
    if not ups:
        return undecidable(gid, f"no up period of {customer}'s link in the log")
    cxs, n = [], 0
    for p in ups:
        if p.end - p.start < interval:
            continue
        for ex in exchangers:
            tries = ev.attempts_of(ex)
            for h in ev.held_copies(ex, domain, p.start):
                n += 1
                if not any(p.start <= x <= p.start + interval + tol
                           for x in tries.get((h.msg, h.rcpt), ())):
                    cxs.append(cx(f"held on {ex} when {customer} came up at {p.start:g}, not "
                                  f"attempted within the probe interval {interval:g} s",
                                  msg=h.msg, trace=h.trace, rcpt=h.rcpt, hosts=[ex, customer],
                                  times=[p.start]))
    if n == 0:
        return undecidable(gid, f"no mail for {domain} was held on {exchangers} when "
                                f"{customer}'s link came up for a full probe interval")
    return verdict(gid, cxs, ok=f"{n} held copies delivered within a probe interval",
                   bad="{n} copies not delivered within a probe interval",
                   judged=n, unit="held copies")
