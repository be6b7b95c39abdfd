"""SMTP feed checks of the filter chain (seed 001): the virus scan deletes,
greylisting defers unknown triplets and passes retries, spam levels get
their actions.  Judged from the log alone: RCPT replies, FilterVerdict,
Discarded, AttemptStarted and acceptance events."""
from __future__ import annotations

import ipaddress

from mta import events as E
from sim.evidence.checks.base import ParamError, check, cx, undecidable, verdict
from sim.evidence.checks.params.feed_filters import (FeedGreylistParams, FeedSpamParams,
                                                     FeedVirusParams)
from sim.evidence.model import Evidence

# -- the feed's filter chain (seed 001) ------------------------------------------
#
# The bounds are postgrey's and the seed's documented defaults (FEED_DEFAULTS,
# with the parameter models), never the feed's configuration: a scenario that
# sets other values says so in the expectation's params.


def _first_attempts(ev: Evidence, feed: str) -> dict[str, float]:
    """msg -> time of its first delivery attempt on ``feed``."""
    out: dict[str, float] = {}
    for e in ev.of(E.AttemptStarted):
        if e.host == feed and e.msg not in out:
            out[e.msg] = float(e.t)
    return out


def _verdicts(ev: Evidence, feed: str, stage: str) -> dict[str, list[E.FilterVerdict]]:
    out: dict[str, list[E.FilterVerdict]] = {}
    for e in ev.of(E.FilterVerdict):
        if e.host == feed and e.stage == stage:
            out.setdefault(e.msg, []).append(e)
    return out


@check("feed-virus-deleted")
def feed_virus_deleted(ev: Evidence, params: FeedVirusParams):
    """A message carrying a virus is never delivered: it is deleted and
    logged, and nothing the feed accepted goes out unscanned.

    Every message the feed accepted over SMTP must have a ``clean`` virus
    verdict before its first delivery attempt (an ``error`` verdict is no
    pass); an ``infected`` one must be ``Discarded`` with policy ``virus``
    and the signature for every accepted recipient, with no attempt, no
    relay, and no later acceptance of its trace on any other host.
    Undecidable when no virus was found (the deletion was never exercised).
    """
    gid = "feed-virus-deleted"
    feed = params.feed
    accepted = [e for e in ev.of(E.MessageAccepted) if e.host == feed]
    verdicts = _verdicts(ev, feed, "virus")
    if not verdicts:
        return undecidable(gid, f"no virus verdict on {feed} in the log")
    first = _first_attempts(ev, feed)
    discarded: dict[str, dict[str, E.Discarded]] = {}
    for d in ev.of(E.Discarded):
        if d.host == feed and d.policy == "virus":
            discarded.setdefault(d.msg, {})[d.rcpt] = d
    relayed = {e.msg for e in ev.of(E.Relayed) if e.host == feed}
    later = {}
    for e in ev.of(E.MessageAccepted):
        if e.host != feed:
            later.setdefault(e.trace, []).append(e)
    cxs, infected = [], 0
    for acc in accepted:
        vs = verdicts.get(acc.msg, [])
        where = dict(msg=acc.msg, trace=acc.trace, hosts=[feed])
        found = [v for v in vs if v.outcome == "infected"]
        if found:
            infected += 1
            names = found[0].detail
            gone = discarded.get(acc.msg, {})
            for r in acc.rcpts:
                d = gone.get(r)
                if d is None or not names or names not in d.reason:
                    cxs.append(cx(f"infected ({names}) but {r} not discarded naming it",
                                  rcpt=r, times=[found[0].t], events=[acc, found[0]], **where))
            out = [e for e in later.get(acc.trace, []) if e.t > acc.t]
            if acc.msg in first or acc.msg in relayed or out:
                cxs.append(cx(f"infected ({names}) and still sent on",
                              times=[found[0].t], events=[acc, found[0], *out[:1]], **where))
            continue
        t = first.get(acc.msg)
        if t is None:
            continue
        before = [v for v in vs if v.t <= t]
        if not before or before[-1].outcome != "clean":
            last = before[-1].outcome if before else "none"
            cxs.append(cx(f"delivery attempted at {t:g} s with virus verdict {last}",
                          times=[acc.t, t], events=[acc, *before[-1:]], **where))
    if infected == 0:
        return undecidable(gid, f"no virus was found on {feed} ({len(verdicts)} messages "
                                "scanned): the deletion was never exercised")
    return verdict(gid, cxs, ok=f"{infected} infected messages deleted, "
                                f"{len(accepted) - infected} scanned before delivery",
                   bad="{n} virus-deletion violations",
                   judged=len(accepted), unit="messages accepted by the feed")


def _rcpt_of(argument: str) -> str:
    a = argument.partition(":")[2].strip()
    a = a.split(">", 1)[0].lstrip("<") if a.startswith("<") else a.split(" ", 1)[0]
    return a.lower()


def _net(ip: str, bits: int) -> str:
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    n = bits if a.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{n}", strict=False))


def _greylisted(r: E.SmtpReply) -> bool:
    return r.code == 450 and "greylist" in r.text.lower()


@check("feed-greylisting")
def feed_greylisting(ev: Evidence, params: FeedGreylistParams):
    """Greylisting at RCPT: the first attempt of an unknown (client network,
    sender, recipient) triplet gets 450 "Greylisted"; a retry after
    ``delay`` and within ``retry_window`` passes; one before the delay does
    not; a sender that never retries never gets that mail accepted.

    The judge keys triplets itself from the feed's RCPT replies (client
    address in its /``ipv4_cidr``, sender and recipient lower-cased); only
    replies that greylisting decides are read (2xx, or 450 "Greylisted").
    A client with ``auto_whitelist`` delayed triplets passed before may pass
    new triplets at once (postgrey's auto-whitelist).  Undecidable without a
    greylisted first attempt and a retry.
    """
    gid = "feed-greylisting"
    feed, delay, window = params.feed, params.delay, params.retry_window
    replies = [r for rs in ev.replies_by_conn(feed).values() for r in rs
               if r.command.upper() == "RCPT" and (r.code < 300 or _greylisted(r))
               and r.mail_from is not None]
    replies.sort(key=lambda r: r.t)
    first: dict[tuple, float] = {}      # triplet -> first seen (restarted after the window)
    passed: set[tuple] = set()
    awl: dict[str, int] = {}
    deferred_first = retried = 0
    cxs = []
    for r in replies:
        key = (_net(r.client_ip, params.ipv4_cidr), r.mail_from.lower(), _rcpt_of(r.argument))
        ok = r.code < 300
        where = dict(rcpt=key[2], hosts=[feed], times=[r.t], events=[r])
        if key in passed:
            continue
        t0 = first.get(key)
        if t0 is None or r.t - t0 > window:
            first[key] = float(r.t)
            if ok:
                whitelisted = params.auto_whitelist and awl.get(r.client_ip, 0) >= params.auto_whitelist
                if not whitelisted:
                    cxs.append(cx(f"unknown triplet {'/'.join(key)} accepted at its first attempt",
                                  **where))
                passed.add(key)
            else:
                deferred_first += 1
            continue
        waited = r.t - t0
        if waited + 1 < delay and ok:      # postgrey counts whole seconds
            cxs.append(cx(f"passed after {waited:.0f} s, before the {delay:g} s delay", **where))
        elif waited >= delay + 1 and not ok:
            cxs.append(cx(f"retry {waited:.0f} s after the first attempt (within the "
                          f"{window:g} s window) still greylisted", **where))
        if ok:
            retried += 1
            passed.add(key)
            awl[r.client_ip] = awl.get(r.client_ip, 0) + 1
    never = [k for k in first if k not in passed]
    accepted = {(_net(a.client_ip, params.ipv4_cidr), a.mail_from.lower(), r.lower())
                for a in ev.of(E.MessageAccepted) if a.host == feed for r in a.rcpts}
    for k in never:
        if k in accepted:
            cxs.append(cx(f"triplet {'/'.join(k)} never passed greylisting but its mail "
                          "was accepted", rcpt=k[2], hosts=[feed]))
    if deferred_first == 0:
        return undecidable(gid, f"no first attempt was greylisted on {feed}")
    if retried == 0:
        return undecidable(gid, f"no greylisted triplet was retried on {feed}")
    return verdict(gid, cxs, ok=f"{deferred_first} unknown triplets greylisted, {retried} "
                                f"passed on a retry after the delay, {len(never)} never "
                                "retried and never accepted",
                   bad="{n} greylisting violations",
                   judged=deferred_first + retried, unit="greylisted triplets and retries")


SPAM_ACTIONS = ("none", "header", "subject", "delete")


def _spam_action(value: object) -> str:
    v = {"tag": "subject"}.get(str(value), str(value))
    if v not in SPAM_ACTIONS:
        raise ValueError(f"expected one of {', '.join(SPAM_ACTIONS)} (or tag), got {value!r}")
    return v


@check("feed-spam-levels")
def feed_spam_levels(ev: Evidence, params: FeedSpamParams):
    """Each message the feed passes on gets a spam level and that level's
    action; with spam checking off, none is scored, changed or deleted.

    On: every clean-scanned message has a ``scored`` spam verdict before
    its first attempt whose level is the one its score falls in (the
    thresholds in params) and whose action is the one set for that level;
    ``delete`` means ``Discarded`` with policy ``spam`` for every recipient
    and no attempt; any other action means no such discard.  Off: no
    message is scored, none has an action other than ``none``, and nothing
    is discarded for spam.  Undecidable without a spam verdict.
    """
    gid = "feed-spam-levels"
    feed = params.feed
    try:
        expected = {lv: _spam_action(getattr(params.actions, lv)) for lv in ("low", "med", "high")}
    except ValueError as exc:
        raise ParamError(f"actions: {exc}") from None
    expected["none"] = "none"
    spam = _verdicts(ev, feed, "spam")
    if not spam:
        return undecidable(gid, f"no spam verdict on {feed} in the log")
    first = _first_attempts(ev, feed)
    dropped: dict[str, set[str]] = {}
    for d in ev.of(E.Discarded):
        if d.host == feed and d.policy == "spam":
            dropped.setdefault(d.msg, set()).add(d.rcpt)
    accepted = {e.msg: e for e in ev.of(E.MessageAccepted) if e.host == feed}
    cxs, levels = [], {}
    for msg, vs in spam.items():
        acc = accepted.get(msg)
        done = [v for v in vs if v.outcome != "error"]
        if not done:
            continue
        v = done[-1]
        where = dict(msg=msg, trace=v.trace, hosts=[feed], times=[v.t], events=[v])
        rcpts = acc.rcpts if acc is not None else ()
        if not params.enabled:
            if v.outcome != "off" or v.action not in ("", "none"):
                cxs.append(cx(f"spam checking is off but the message was {v.outcome} "
                              f"(level {v.level}, action {v.action})", **where))
            if msg in dropped:
                cxs.append(cx("spam checking is off but the message was deleted for spam",
                              **where))
            levels["off"] = levels.get("off", 0) + 1
            continue
        if v.outcome != "scored":
            cxs.append(cx(f"spam checking is on but the message was {v.outcome}", **where))
            continue
        level = ("high" if v.score >= params.high else "med" if v.score >= params.med
                 else "low" if v.score >= params.low else "none")
        levels[level] = levels.get(level, 0) + 1
        if v.level != level:
            cxs.append(cx(f"score {v.score:g} is level {level}, classified {v.level}", **where))
        if v.action != expected[level]:
            cxs.append(cx(f"level {level} wants action {expected[level]}, took {v.action}",
                          **where))
        t = first.get(msg)
        if expected[level] == "delete":
            missing = [r for r in rcpts if r not in dropped.get(msg, set())]
            if missing or t is not None:
                cxs.append(cx(f"level {level} is deleted, but "
                              + (f"{missing[0]} was not discarded" if missing
                                 else f"delivery was attempted at {t:g} s"), **where))
        else:
            if msg in dropped:
                cxs.append(cx(f"level {level} (action {expected[level]}) deleted for spam",
                              **where))
            if t is not None and t < v.t:
                cxs.append(cx(f"delivery attempted at {t:g} s before the spam verdict",
                              **where))
    for msg in dropped:
        if msg not in spam:
            cxs.append(cx("deleted for spam without a spam verdict", msg=msg, hosts=[feed]))
    seen = ", ".join(f"{k} {n}" for k, n in sorted(levels.items()))
    return verdict(gid, cxs, ok=f"{sum(levels.values())} messages judged ({seen}), each "
                                "with its level's action",
                   bad="{n} spam-level violations",
                   judged=sum(levels.values()), unit="spam verdicts")
