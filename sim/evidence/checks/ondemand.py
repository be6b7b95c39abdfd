"""Dial-up customer checks (seed 004): no bounce within the lifetime,
connectivity probes, finger SMTP-on-Demand, ETRN flush."""
from __future__ import annotations

from mta import events as E
from sim.evidence.checks.base import (
    check, cx, p_dur, p_list, p_str, undecidable, verdict)
from sim.evidence.checks.helpers import attempts_of, held_copies, node_domain
from sim.evidence.projections import in_domain, lifecycles, link_periods


def _releases(events) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for e in events:
        if isinstance(e, E.Released):
            out.setdefault(e.host, []).append(float(e.t))
    return out


@check("dialup-no-bounce")
def dialup_no_bounce(events: list[E.Event], params: dict):
    """Mail for the dial-up customer does not bounce within the lifetime.

    Params: ``domain``, ``lifetime`` (duration, default 5d), ``tolerance``
    (seconds, default 1).  Every copy for the domain that bounced must have
    been queued at least ``lifetime`` before.
    """
    gid = "dialup-no-bounce"
    domain = p_str(params, "domain")
    lifetime = p_dur(params, "lifetime", "5d")
    tol = p_dur(params, "tolerance", 1)
    lives = [lf for lf in lifecycles(events) if in_domain(lf.rcpt, domain)
             and lf.queued_t is not None]
    if not lives:
        return undecidable(gid, f"no mail for {domain} was queued")
    cxs = [cx(f"bounced {lf.fate_t - lf.queued_t:g} s after queueing, within the lifetime "
              f"{lifetime:g} s", msg=lf.msg, trace=lf.trace, rcpt=lf.rcpt, hosts=[lf.host],
              times=[lf.queued_t, lf.fate_t], events=lf.events)
           for lf in lives if isinstance(lf.fate_event, E.Bounced)
           and lf.fate_t - lf.queued_t < lifetime - tol]
    return verdict(gid, cxs, ok=f"{len(lives)} copies for {domain} stored without bouncing",
                   bad="{n} bounces within the queue lifetime")


def _release_check(events, domain, triggers, win, kind_name):
    """For each trigger (t, host, event): every copy held for the domain on
    that host then is attempted within ``win``."""
    cxs = []
    tries_on: dict[str, dict] = {}
    for t, host, ev in triggers:
        if host not in tries_on:
            tries_on[host] = attempts_of(events, host)
        tries = tries_on[host]
        for h in held_copies(events, host, domain, t):
            if not any(t <= x <= t + win for x in tries[(h.msg, h.rcpt)]):
                cxs.append(cx(f"held on {host} at the {kind_name}, not attempted within "
                              f"{win:g} s", msg=h.msg, trace=h.trace, rcpt=h.rcpt,
                              hosts=[host], times=[t], events=[ev]))
    return cxs


@check("etrn-flush")
def etrn_flush(events: list[E.Event], params: dict):
    """ETRN on an exchanger starts delivery of what it holds for the domain;
    held mail on an exchanger without ETRN waits for its own release.

    Params: ``exchangers`` (hosts), ``domain``, ``within`` (duration,
    default 60 s).  Each 2xx ETRN whose node covers the domain (plain,
    ``@`` with subdomains, ``#`` queue name) is followed within ``within``
    by an attempt of every copy held for the domain there; an ETRN refused
    while mail was held fails; and every attempt of a copy that was queued
    held comes within ``within`` after a Released on its host.
    """
    gid = "etrn-flush"
    exchangers = set(p_list(params, "exchangers"))
    domain = p_str(params, "domain")
    win = p_dur(params, "within", 60)
    etrns = []
    for e in events:
        if isinstance(e, E.EtrnRequest) and e.host in exchangers:
            node, subs = node_domain(e.argument)
            if node == domain.lower() or (subs and in_domain("x@" + domain, node)):
                etrns.append(e)
    if not etrns:
        return undecidable(gid, f"no ETRN for {domain} reached {sorted(exchangers)}")
    cxs = []
    for e in etrns:
        if not 200 <= e.code < 300 and held_copies(events, e.host, domain, e.t):
            cxs.append(cx(f"ETRN answered {e.code} while mail for {domain} was held",
                          hosts=[e.host], times=[e.t], events=[e]))
    cxs += _release_check(events, domain,
                          [(e.t, e.host, e) for e in etrns if 200 <= e.code < 300], win, "ETRN")
    rel = _releases(events)
    for lf in lifecycles(events):
        if lf.host in exchangers and in_domain(lf.rcpt, domain) and lf.held:
            early = [a for a in lf.attempts
                     if not any(a.t - win <= r <= a.t for r in rel.get(lf.host, []))]
            if early:
                cxs.append(cx("held mail attempted without any release", msg=lf.msg,
                              trace=lf.trace, rcpt=lf.rcpt, hosts=[lf.host],
                              times=[a.t for a in early], events=early))
    return verdict(gid, cxs, ok=f"{len(etrns)} ETRN requests each started delivery",
                   bad="{n} ETRN flush failures")


@check("smtp-on-demand-finger")
def finger(events: list[E.Event], params: dict):
    """``finger domain@exchanger`` starts delivery of the mail held there.

    Params: ``exchangers`` (hosts), ``domain``, ``within`` (duration,
    default 60 s).  Each finger query naming the domain is followed within
    ``within`` by an attempt of every copy held for it on that exchanger; a
    forwarding query (with ``@``) releases nothing.
    """
    gid = "smtp-on-demand-finger"
    exchangers = set(p_list(params, "exchangers"))
    domain = p_str(params, "domain")
    win = p_dur(params, "within", 60)
    qs = [e for e in events if isinstance(e, E.FingerQuery) and e.host in exchangers]
    mine = [e for e in qs if e.query.strip().lower().rstrip(".") == domain.lower()]
    if not mine:
        return undecidable(gid, f"no finger query for {domain} reached {sorted(exchangers)}")
    cxs = _release_check(events, domain, [(e.t, e.host, e) for e in mine], win,
                         "finger query")
    for e in qs:
        if "@" in e.query and e.released:
            cxs.append(cx(f"forwarding query {e.query!r} released {e.released} messages",
                          hosts=[e.host], times=[e.t], events=[e]))
    return verdict(gid, cxs, ok=f"{len(mine)} finger queries each started delivery",
                   bad="{n} finger failures")


@check("connectivity-probe")
def connectivity_probe(events: list[E.Event], params: dict):
    """Exchangers probe the customer and deliver within one probe interval
    of its link coming up, with no trigger.

    Params: ``exchangers`` (hosts), ``customer`` (host whose link comes and
    goes), ``domain``, ``probe_interval`` (duration), ``tolerance``
    (seconds, default 1).  For each up period of the customer's link at
    least ``probe_interval`` long, every copy held for the domain on an
    exchanger when it began is attempted within the interval.
    """
    gid = "connectivity-probe"
    exchangers = p_list(params, "exchangers")
    customer, domain = p_str(params, "customer"), p_str(params, "domain")
    interval = p_dur(params, "probe_interval")
    tol = p_dur(params, "tolerance", 1)
    ups = [p for p in link_periods(events) if p.host == customer and p.state == "up"]
    if not ups:
        return undecidable(gid, f"no up period of {customer}'s link in the log")
    cxs, n = [], 0
    tries_on = {ex: attempts_of(events, ex) for ex in exchangers}
    for p in ups:
        if p.end - p.start < interval:
            continue
        for ex in exchangers:
            tries = tries_on[ex]
            for h in held_copies(events, ex, domain, p.start):
                n += 1
                if not any(p.start <= x <= p.start + interval + tol
                           for x in tries[(h.msg, h.rcpt)]):
                    cxs.append(cx(f"held on {ex} when {customer} came up at {p.start:g}, not "
                                  f"attempted within the probe interval {interval:g} s",
                                  msg=h.msg, trace=h.trace, rcpt=h.rcpt, hosts=[ex, customer],
                                  times=[p.start]))
    if n == 0:
        return undecidable(gid, f"no mail for {domain} was held on {exchangers} when "
                                f"{customer}'s link came up for a full probe interval")
    return verdict(gid, cxs, ok=f"{n} held copies delivered within a probe interval",
                   bad="{n} copies not delivered within a probe interval")
