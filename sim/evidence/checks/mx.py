"""mx-order: every delivery round held to the MX answer its sender was told.

The resolver's answers are in the log (:class:`mta.events.MxAnswer`), so the
check never infers the MX set from the attempts themselves: a sender that
never tries the primary fails, whatever it tried instead.
"""
from __future__ import annotations

import math
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache

from mta import events as E
from sim.evidence.checks.base import check, cx, enhanced_code, undecidable, verdict
from sim.evidence.checks.params.mx import MxOrderParams
from sim.evidence.lifecycle import domain_of
from sim.evidence.model import Evidence


#: What ends a delivery round of one message on one host.
_ROUND_ENDS = (E.Deferred, E.Relayed, E.Bounced)


@lru_cache(maxsize=4096)     # a world's few exchange names, asked per attempt
def _name(exchange: str) -> str:
    return exchange.lower().rstrip(".")


@dataclass(frozen=True)
class _Told:
    """What one MX answer told one sending host."""

    usable: tuple[tuple[int, str], ...]   # (preference, exchange), best first
    own: int | None                        # the sender's own preference, if it is an MX
    listed: dict[str, int]                 # exchange -> its first listed preference
    tie: tuple[str, ...]                   # the usable exchanges sharing the best
                                           # preference, if more than one

    @classmethod
    def of(cls, a: E.MxAnswer) -> "_Told":
        me = _name(a.host)
        own = min((p for p, x in zip(a.preferences, a.exchanges) if _name(x) == me),
                  default=None)
        gone = {_name(x) for x in a.unresolved}
        usable = sorted((p, _name(x)) for p, x in zip(a.preferences, a.exchanges)
                        if (own is None or p < own) and _name(x) not in gone)
        listed: dict[str, int] = {}
        for p, x in zip(a.preferences, a.exchanges):
            listed.setdefault(_name(x), p)
        tied = tuple(x for p, x in usable if p == usable[0][0]) if usable else ()
        return cls(tuple(usable), own, listed, tied if len(tied) > 1 else ())


def _said(a: E.MxAnswer) -> str:
    """What the answer told, in words."""
    return f"told {', '.join(f'{p} {x}' for p, x in zip(a.preferences, a.exchanges))}"


def _where(host: str, rnd: list[E.AttemptStarted], end: E.Event | None,
           answer: E.MxAnswer | None) -> dict:
    """The counterexample fields of one round (with the answer it was judged on)."""
    return dict(msg=rnd[0].msg, trace=rnd[0].trace,
                hosts=[host] + [a.dest_host for a in rnd], times=[a.t for a in rnd],
                events=([answer] if answer is not None else []) + rnd
                + ([end] if end is not None else []))


def _binomial_cdf(c: int, n: int, p: float) -> float:
    """P(X <= c) for X ~ Binomial(n, p)."""
    return sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(c + 1))


def _rounds(ev: Evidence) -> list[tuple[str, list[E.AttemptStarted], E.Event | None]]:
    """(host, attempts, the event that ended them) for every delivery round
    that tried an MX preference, in log order per (host, msg)."""
    per_msg: dict[tuple[str, str], list[E.Event]] = defaultdict(list)
    for e in ev.in_order(E.AttemptStarted, *_ROUND_ENDS):
        per_msg[(e.host, e.msg)].append(e)
    out = []
    attempt = E.AttemptStarted
    for (host, _msg), evs in per_msg.items():
        rnd: list[E.AttemptStarted] = []
        at_mx = False           # an attempt of the round tried an MX preference
        for e in evs:
            if e.__class__ is attempt or isinstance(e, attempt):
                rnd.append(e)
                at_mx = at_mx or e.preference is not None
                continue
            if at_mx:
                out.append((host, rnd, e))
            rnd, at_mx = [], False
        if at_mx:               # the log ended inside a round
            out.append((host, rnd, None))
    return out


@check("mx-order")
def mx_order(ev: Evidence, params: MxOrderParams):
    """Senders try the MX hosts DNS gave them in preference order, fall back
    on failure, shuffle equal preferences, and honour a null MX.

    Each delivery round (a message's attempts on one host until the
    Deferred, Relayed or Bounced that ends them) that tried an MX preference
    is judged against the last MxAnswer with records that host got for the
    recipients' domain before the round (RFC 5321 §5.1):

    * every host tried is one the answer listed, at its listed preference;
    * a relaying MX (the sender is itself in the answer) only tries
      preferences below its own;
    * the first attempt is at the most preferred usable one (an exchange
      with an address, below the sender's own preference);
    * preferences never go back up to a more preferred one;
    * a round that defers for a network reason (an RFC 3463 X.4.x code: no
      server answered) has tried every usable exchange, unless it reached
      ``address_limit`` addresses.

    Equal preferences are randomised: per (sending host, domain, tie group),
    once ``shuffle_min_rounds`` rounds started in the group, a tied host
    that came first ``c`` times out of ``n`` fails when P(X <= c) for X ~
    Binomial(n, 1/k) is below ``shuffle_significance / k`` (k tied hosts;
    Bonferroni).  With the defaults, 20 rounds that all start at one of two
    tied hosts fail (P = 1e-6), 3 of 20 do not (P = 1.3e-3).

    Null MX (RFC 7505): every copy queued on a host that was told its
    domain has a null MX (or at one of ``null_mx_domains``) bounces with 556
    5.1.10 and no attempt, within ``null_mx_max_delay`` of queueing.
    """
    gid = "mx-order"
    answers: dict[tuple[str, str], list[E.MxAnswer]] = defaultdict(list)
    nulls_told: set[tuple[str, str]] = set()
    for a in ev.of(E.MxAnswer):
        if a.outcome == "answer":
            answers[(a.host, a.domain.lower())].append(a)
        elif a.outcome == "null-mx":
            nulls_told.add((a.host, a.domain.lower()))
    times = {k: [a.t for a in v] for k, v in answers.items()}
    told_cache: dict[tuple, _Told] = {}
    domains: dict[str, str] = {}           # rcpt -> its domain
    cxs = []
    judged = 0
    firsts: dict[tuple[str, str, tuple[str, ...]], list[str]] = defaultdict(list)
    for host, rnd, end in _rounds(ev):
        first = rnd[0]
        dom = domains.get(first.rcpts[0])
        if dom is None:
            dom = domains[first.rcpts[0]] = domain_of(first.rcpts[0]).lower()
        where_told = (host, dom)
        i = bisect_right(times.get(where_told, ()), first.t) - 1
        if i < 0:
            cxs.append(cx(f"a delivery round for {dom} at MX preference "
                          f"{first.preference} with no MX answer before it", cause="no-answer",
                          **_where(host, rnd, end, None)))
            continue
        a = answers[where_told][i]
        # A host is told the same records for a domain again and again: read
        # each distinct answer once.
        said = (a.host, a.preferences, a.exchanges, a.unresolved)
        told = told_cache.get(said)
        if told is None:
            told = told_cache[said] = _Told.of(a)
        judged += 1
        tried = [(_name(x.dest_host), x.preference) for x in rnd]
        # The counterexample's fields and the answer in words are only
        # worked out for a round that breaks a rule.
        found: list[tuple[str, str]] = []
        for x, p in tried:
            listed = told.listed.get(x)
            if listed is None or p != listed:
                found.append((f"tried {x} at preference {p}, but the answer lists "
                              f"{'it at ' + str(listed) if listed is not None else 'no such MX'}"
                              f" ({_said(a)})", "not-in-answer"))
            elif told.own is not None and p >= told.own:
                found.append((f"a relaying MX (own preference {told.own}) tried {x} at "
                              f"preference {p}, not below its own", "relay-not-below-own"))
        if told.usable:
            prefs = [p for _x, p in tried if p is not None]
            best = told.usable[0][0]
            if prefs and prefs[0] != best:
                found.append((f"the round started at {tried[0][0]} (preference {prefs[0]}), "
                              f"not at the most preferred usable MX (preference {best}; "
                              f"{_said(a)})", "not-most-preferred"))
            elif told.tie:
                firsts[(host, dom, told.tie)].append(tried[0][0])
            if len(prefs) > 1 and any(b < a_ for a_, b in zip(prefs, prefs[1:])):
                found.append((f"a more preferred MX after a less preferred one: preferences "
                              f"{prefs} ({_said(a)})", "out-of-order"))
            if isinstance(end, E.Deferred) and \
                    (enhanced_code(end.text) or "").startswith("4.4.") \
                    and len(rnd) < params.address_limit:
                missed = [x for _p, x in told.usable if x not in {t for t, _ in tried}]
                if missed:
                    found.append((f"deferred ({end.code} {end.text}) without falling back to "
                                  f"{', '.join(missed)} ({_said(a)})", "no-fallback"))
        if found:
            where = _where(host, rnd, end, a)
            cxs += [cx(why, cause=cause, **where) for why, cause in found]
    cxs += _shuffle_findings(firsts, params)
    nulls = _null_mx(ev, params, nulls_told, cxs)
    if judged + nulls == 0 and not cxs:
        return undecidable(gid, "no delivery round at an MX preference and no null-MX "
                                "copy in the log")
    ties = sum(len(v) for v in firsts.values())
    return verdict(gid, cxs,
                   ok=f"{judged} delivery rounds in the order DNS gave, with fallback "
                      f"({ties} starting in a tie); {nulls} null-MX copies failed at once",
                   bad="{n} MX-order violations",
                   judged=judged + nulls, unit="delivery rounds judged against an MX answer "
                                               "and null-MX copies")


def _shuffle_findings(firsts: dict[tuple[str, str, tuple[str, ...]], list[str]],
                      params: MxOrderParams) -> list[dict]:
    """RFC 5321 §5.1: equal preferences MUST be randomised."""
    out = []
    for (host, dom, tie), dests in sorted(firsts.items()):
        n, k = len(dests), len(tie)
        if n < params.shuffle_min_rounds:
            continue
        for x in tie:
            c = dests.count(x)
            p = _binomial_cdf(c, n, 1 / k)
            if p < params.shuffle_significance / k:
                out.append(cx(f"{x} came first in {c} of {n} rounds for {dom} from {host}, "
                              f"though {k} hosts share its preference ({', '.join(tie)}): a "
                              f"fair shuffle does that with probability {p:.2g}",
                              hosts=[host, *tie], cause="not-shuffled"))
    return out


def _null_mx(ev: Evidence, params: MxOrderParams, told: set[tuple[str, str]],
             cxs: list[dict]) -> int:
    """Judge the copies for null-MX domains; returns how many."""
    named = {d.lower() for d in params.null_mx_domains}
    n = 0
    if not named and not told:
        return n
    for lf in ev.lifecycles:
        dom = domain_of(lf.rcpt).lower()
        if lf.queued_t is None or (dom not in named and (lf.host, dom) not in told):
            continue
        n += 1
        fe = lf.fate_event
        if not (isinstance(fe, E.Bounced) and fe.code == 556 and "5.1.10" in fe.text
                and not lf.attempts and fe.t - lf.queued_t <= params.null_mx_max_delay):
            cxs.append(cx("null MX domain not failed at once with 556 5.1.10",
                          msg=lf.msg, trace=lf.trace, rcpt=lf.rcpt, hosts=[lf.host],
                          times=[lf.queued_t], events=lf.events, cause="null-mx-not-failed"))
    return n
