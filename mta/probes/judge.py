"""The probes' decisions: replies in, :class:`~mta.probes.findings.Finding` out.

Pure functions, one per probe, each citing the rule it applies.  The
expected codes are tables (:data:`EXPECTED`), so a reader sees in one place
what a conforming server answers.
"""
from __future__ import annotations

import re
from typing import Sequence

from mta.probes.findings import Finding, Reply

#: RFC 5321 §4.5.3.1.8: a server must accept at least 100 recipients.
RFC_MIN_RECIPIENTS = 100
#: RFC 5321 §4.5.3.2.7: the server waits at least 5 minutes for a command.
RFC_MIN_IDLE = 300.0

#: Out-of-order and malformed commands -> the codes a conforming server gives.
EXPECTED: dict[str, tuple[tuple[int, ...], str]] = {
    "NOOP": ((250,), "RFC 5321 §4.1.1.9"),
    "RSET": ((250,), "RFC 5321 §4.1.1.5"),
    "unknown command": ((500, 502), "RFC 5321 §4.2.4"),
    "RCPT before MAIL": ((503,), "RFC 5321 §4.1.4 (bad sequence)"),
    "DATA before RCPT": ((503, 554), "RFC 5321 §3.3 (no valid recipients)"),
    "MAIL with bad syntax": ((501, 553, 555), "RFC 5321 §4.2.4 / §4.3.2"),
    "second MAIL": ((503,), "RFC 5321 §4.1.4 (nested transaction)"),
}
#: What ETRN may answer (RFC 1985 §5: 250-253 queued; 458, 459 refused).
ETRN_REPLIES = (250, 251, 252, 253, 458, 459)
#: What a server that does not offer ETRN answers it.
NOT_OFFERED = (500, 502, 504)
#: SASL mechanisms that send the password itself (RFC 4616 PLAIN, and
#: LOGIN): RFC 4954 §4 wants a server able to refuse them before TLS.
PLAINTEXT_MECHANISMS = frozenset({"PLAIN", "LOGIN"})


def _ev(*items: object) -> tuple[str, ...]:
    return tuple(str(i) for i in items)


def _code(reply: Reply) -> str:
    """``452 4.5.3``, or the bare code when the reply has no enhanced code."""
    return f"{reply.code} {reply.enhanced}" if reply.enhanced else str(reply.code)


def ehlo_keywords(reply: Reply) -> dict[str, str]:
    """The extensions an EHLO reply offers: keyword (upper case) -> parameters."""
    out = {}
    for line in reply.lines[1:]:
        keyword, _, params = line.strip().partition(" ")
        if keyword:
            out[keyword.upper()] = params.strip()
    return out


def judge_banner(greeting: Reply, expect: str | None = None) -> Finding:
    """RFC 5321 §4.2/§4.3.1: 220 with the server's name first; a 554 greeting
    refuses the session.  ``expect``: a word the real server's banner has
    (a banner without it is someone else's: interception)."""
    if greeting.code == 554:
        return Finding("banner", "info", "refuses this client at connect (554 greeting)",
                       _ev(greeting))
    if greeting.code != 220:
        return Finding("banner", "fail", f"greeting is {greeting.code}, expected 220",
                       _ev(greeting))
    first = greeting.lines[0].split(" ", 1)[0] if greeting.lines and greeting.lines[0] else ""
    if expect is not None and expect.lower() not in greeting.text.lower():
        return Finding("banner", "fail", f"banner lacks {expect!r}: another server answers "
                       "(interception?)", _ev(greeting))
    if "." not in first and not first.startswith("["):
        return Finding("banner", "fail", f"220 without a domain name first (got {first!r})",
                       _ev(greeting))
    return Finding("banner", "pass", f"220 from {first}", _ev(greeting))


def judge_helo(bare_helo: Reply, ehlo: Reply) -> Finding:
    """RFC 5321 §4.1.1.1: HELO needs a domain (501 without one); EHLO with a
    domain is answered 250."""
    if ehlo.code != 250:
        return Finding("helo", "fail", f"EHLO with a domain answered {ehlo.code}", _ev(ehlo))
    if bare_helo.code != 501:
        return Finding("helo", "fail", f"HELO without a domain answered {bare_helo.code}, "
                       "expected 501", _ev(bare_helo))
    return Finding("helo", "pass", "EHLO 250; HELO without a domain 501", _ev(ehlo, bare_helo))


def judge_reply_codes(replies: Sequence[tuple[str, Reply]]) -> Finding:
    """Each reply of :data:`EXPECTED` against its table entry."""
    wrong = [f"{what}: {r.code}, expected {'/'.join(map(str, EXPECTED[what][0]))} "
             f"({EXPECTED[what][1]})"
             for what, r in replies if r.code not in EXPECTED[what][0]]
    evidence = _ev(*(f"{what}: {r}" for what, r in replies))
    if wrong:
        return Finding("reply-codes", "fail", "; ".join(wrong), evidence)
    return Finding("reply-codes", "pass", f"{len(replies)} commands answered with the "
                   "expected codes", evidence)


def judge_enhanced(replies: Sequence[tuple[str, Reply]], advertised: bool) -> Finding:
    """RFC 2034 §3: with ENHANCEDSTATUSCODES every 2xx/4xx/5xx reply (but the
    greeting and EHLO's) starts with an RFC 3463 code of the same class."""
    judged = [(w, r) for w, r in replies if r.klass in (2, 4, 5)]
    if not advertised:
        with_codes = sum(r.enhanced is not None for _, r in judged)
        return Finding("enhanced-codes", "info", f"ENHANCEDSTATUSCODES not offered "
                       f"({with_codes} of {len(judged)} replies carry codes anyway)")
    bad = [f"{w}: {r}" for w, r in judged
           if r.enhanced is None or int(r.enhanced[0]) != r.klass]
    if bad:
        return Finding("enhanced-codes", "fail", f"{len(bad)} of {len(judged)} replies lack "
                       "an enhanced code of their class", _ev(*bad[:10]))
    return Finding("enhanced-codes", "pass", f"all {len(judged)} replies carry an enhanced "
                   "code of their class")


def size_limit(keywords: dict[str, str]) -> int | None:
    """The SIZE an EHLO advertises (0: no fixed limit; None: not offered)."""
    if "SIZE" not in keywords:
        return None
    value = keywords["SIZE"]
    return int(value) if value.isdigit() else 0


def judge_size(advertised: int | None, over: Reply | None, under: Reply | None) -> Finding:
    """RFC 1870 §6: a declared SIZE over the advertised limit is refused at
    MAIL (552, 5.3.4), one under it accepted."""
    if advertised is None:
        return Finding("size", "info", "SIZE not offered: limits show only at DATA")
    if not advertised or over is None or under is None:
        return Finding("size", "info", "SIZE offered without a fixed limit")
    ev = _ev(f"SIZE={advertised + 1}: {over}", f"SIZE=1000: {under}")
    if under.code == 530:
        return Finding("size", "skip", "MAIL needs authentication first (530): SIZE not "
                       "judged", ev)
    if under.klass != 2:
        return Finding("size", "fail", f"MAIL with SIZE=1000 refused ({under.code})", ev)
    if over.code != 552 and not (over.klass == 5 and over.enhanced == "5.3.4"):
        return Finding("size", "fail", f"MAIL declaring {advertised + 1} octets (over the "
                       f"advertised {advertised}) answered {over.code}, expected 552", ev)
    return Finding("size", "pass", f"advertises {advertised}; refuses more at MAIL "
                   f"({_code(over)})", ev)


def judge_recipient_limit(replies: Sequence[Reply], sent: int) -> Finding:
    """RFC 5321 §4.5.3.1.8/.10: at least 100 recipients; past the server's
    limit, 452 (4.5.3) per extra recipient, never a silent drop."""
    if not replies:
        return Finding("recipient-limit", "skip", "no recipient was sent")
    first = replies[0]
    if first.klass != 2:
        return Finding("recipient-limit", "skip", f"the first recipient is refused "
                       f"({first}); give a valid one with --rcpt", _ev(first))
    accepted = 0
    for r in replies:
        if r.klass != 2:
            break
        accepted += 1
    if accepted == len(replies):
        return Finding("recipient-limit", "pass" if sent >= RFC_MIN_RECIPIENTS else "info",
                       f"accepted all {sent} recipients (a limit below {sent} would be a "
                       "silent one)")
    refusal = replies[accepted]
    ev = _ev(f"RCPT {accepted + 1}: {refusal}")
    if accepted < RFC_MIN_RECIPIENTS:
        return Finding("recipient-limit", "fail", f"refuses after {accepted} recipients "
                       f"({refusal.code}); RFC 5321 requires {RFC_MIN_RECIPIENTS}", ev)
    if refusal.code != 452:
        return Finding("recipient-limit", "fail", f"recipient {accepted + 1} refused with "
                       f"{refusal.code}, expected 452 (4.5.3)", ev)
    return Finding("recipient-limit", "pass", f"limit {accepted}, then {_code(refusal)}", ev)


def judge_relay(attempts: Sequence[tuple[str, str, Reply, Reply | None]]) -> Finding:
    """nmap smtp-open-relay: any relay form whose RCPT is accepted for a
    foreign domain makes an open relay.  ``attempts``: (MAIL argument, RCPT
    argument, MAIL reply, RCPT reply or None when MAIL was refused)."""
    accepted = [f"MAIL FROM:{m} RCPT TO:{r} -> {rr}" for m, r, _, rr in attempts
                if rr is not None and rr.klass == 2]
    tried = sum(rr is not None for *_, rr in attempts)
    if accepted:
        return Finding("open-relay", "fail", f"open relay: {len(accepted)} of "
                       f"{len(attempts)} forms accepted", _ev(*accepted))
    codes = sorted({rr.code for *_, rr in attempts if rr is not None})
    if not tried:
        return Finding("open-relay", "pass", f"0 of {len(attempts)} forms accepted "
                       "(every MAIL refused)")
    return Finding("open-relay", "pass", f"0 of {len(attempts)} forms accepted "
                   f"(RCPT answered {'/'.join(map(str, codes))})")


def judge_auth_relay(offered: bool, reply: Reply | None, mail: Reply | None = None,
                     tls: str | None = None) -> Finding:
    """RFC 4954 §6: a server that relays after AUTH refuses an
    unauthenticated relay recipient, ideally 530 5.7.0 (an AUTH-only relay
    may say so already to MAIL: ``mail`` is that reply).  ``tls``: the
    replies came on a STARTTLS session (how it was set up, for the summary)."""
    where = f" on the TLS session ({tls})" if tls else ""
    if not offered:
        return Finding("auth-relay", "skip", "AUTH not offered" +
                       (where or " (before STARTTLS)"))
    if reply is None:
        if mail is not None and mail.code == 530:
            return Finding("auth-relay", "pass",
                           f"asks for authentication at MAIL ({_code(mail)}){where}", _ev(mail))
        return Finding("auth-relay", "skip", f"MAIL refused before a relay recipient{where}")
    if reply.klass == 2:
        return Finding("auth-relay", "fail", f"relays without AUTH{where}", _ev(reply))
    note = "asks for authentication" if reply.code == 530 else "refuses"
    return Finding("auth-relay", "pass", f"{note} ({_code(reply)}){where}", _ev(reply))


def auth_mechanisms(keywords: dict[str, str]) -> frozenset[str] | None:
    """The SASL mechanisms an EHLO offers (None: no AUTH)."""
    if "AUTH" not in keywords:
        return None
    return frozenset(m.upper() for m in keywords["AUTH"].split())


def judge_starttls(offered: bool, reply: Reply | None, error: str | None,
                   session: str | None, verified: bool) -> Finding:
    """RFC 3207 §4: an advertised STARTTLS is answered 220 and followed by a
    TLS handshake.  ``session``: protocol and cipher once up; ``verified``:
    whether the certificate was checked (by default it is not: a probe
    judges the dialogue, and test servers have their own certificates)."""
    if not offered:
        return Finding("starttls", "info", "STARTTLS not offered")
    if reply is not None and reply.code != 220:
        return Finding("starttls", "fail", f"offered, but STARTTLS answered {reply.code}",
                       _ev(reply))
    if error is not None or session is None:
        return Finding("starttls", "fail", f"220, then the TLS handshake failed: {error}",
                       _ev(reply) if reply else ())
    check = "certificate verified" if verified else "certificate not verified (--tls-ca PEM)"
    return Finding("starttls", "pass", f"{session}; {check}", _ev(reply) if reply else ())


def judge_auth_cleartext(clear: dict[str, str], tls: dict[str, str] | None,
                         starttls: bool) -> Finding:
    """RFC 4954 §4: plaintext password mechanisms (PLAIN, LOGIN) belong
    behind STARTTLS (Postfix's ``smtpd_tls_auth_only = yes``); offered
    over cleartext, passwords cross the network readable.  ``clear`` and
    ``tls`` are the EHLO keywords before and after STARTTLS (None: no TLS
    session); ``starttls``: whether the server offers it."""
    before = auth_mechanisms(clear)
    after = auth_mechanisms(tls) if tls is not None else None
    if before is not None:
        exposed = sorted(before & PLAINTEXT_MECHANISMS)
        ev = _ev(f"EHLO before TLS: AUTH {clear['AUTH']}")
        hint = " (STARTTLS is offered: offer AUTH only after it)" if starttls else             " (no STARTTLS offered)"
        if exposed:
            return Finding("auth-cleartext", "fail", f"AUTH offered over cleartext: "
                           f"{' '.join(exposed)} send the password readable{hint}", ev)
        return Finding("auth-cleartext", "info", "AUTH offered over cleartext, with no "
                       f"plaintext mechanism ({' '.join(sorted(before))})", ev)
    if after is not None:
        return Finding("auth-cleartext", "pass", "AUTH offered only after STARTTLS "
                       f"({' '.join(sorted(after))})", _ev(f"EHLO after TLS: AUTH {tls['AUTH']}"))
    return Finding("auth-cleartext", "skip", "AUTH not offered")


def judge_etrn(offered: bool, reply: Reply) -> Finding:
    """RFC 1985 §5: ETRN's replies; a server without it answers 500/502."""
    if offered:
        if reply.code in ETRN_REPLIES:
            return Finding("etrn", "pass", f"offered; ETRN answered {reply.code}", _ev(reply))
        return Finding("etrn", "fail", f"offered, but ETRN answered {reply.code} (RFC 1985 "
                       f"allows {'/'.join(map(str, ETRN_REPLIES))})", _ev(reply))
    if reply.code in NOT_OFFERED or reply.code in ETRN_REPLIES:
        return Finding("etrn", "info", f"not offered (ETRN answered {reply.code})", _ev(reply))
    return Finding("etrn", "fail", f"not offered, yet ETRN answered {reply.code}", _ev(reply))


def judge_greylist(first: Reply, retry: Reply | None, waited: float | None) -> Finding:
    """Greylisting: a new triplet is deferred (4xx) at RCPT and accepted when
    retried after the delay; a permanent refusal is not greylisting."""
    if first.klass == 2:
        return Finding("greylisting", "info", "no greylisting: a new triplet is accepted "
                       "at once", _ev(first))
    if first.klass == 5:
        return Finding("greylisting", "skip", f"the recipient is refused ({first}); give a "
                       "valid one with --rcpt", _ev(first))
    if retry is None:
        return Finding("greylisting", "info", f"first attempt deferred ({first.code}); "
                       "retry with --greylist-wait SECONDS to judge", _ev(first))
    ev = _ev(f"first: {first}", f"after {waited:g} s: {retry}")
    if retry.klass == 2:
        return Finding("greylisting", "pass", f"first attempt {first.code}, accepted "
                       f"after {waited:g} s", ev)
    return Finding("greylisting", "fail", f"still {retry.code} after {waited:g} s", ev)


def judge_pipelining(offered: bool, lines: Sequence[str], replies: Sequence[Reply]) -> Finding:
    """RFC 2920 §3.1: with PIPELINING, a group of commands in one write gets
    one reply per command, in order."""
    if not offered:
        return Finding("pipelining", "skip", "PIPELINING not offered")
    ev = _ev(*(f"{l} -> {r}" for l, r in zip(lines, replies)))
    if len(replies) != len(lines):
        return Finding("pipelining", "fail", f"{len(replies)} replies to {len(lines)} "
                       "pipelined commands", ev)
    order = [re.split(r"[ :]", l, 1)[0].upper() for l in lines]
    expect_ok = {"MAIL", "RSET", "NOOP"}
    # An AUTH-only server may refuse MAIL with 530 (RFC 4954 §6): still in order.
    wrong = [f"{c} answered {r.code}" for c, r in zip(order, replies)
             if c in expect_ok and r.code != 250 and not (c == "MAIL" and r.code == 530)]
    if wrong:
        return Finding("pipelining", "fail", "replies out of order or refused: "
                       + "; ".join(wrong), ev)
    return Finding("pipelining", "pass", f"{len(lines)} pipelined commands answered in "
                   "order", ev)


def judge_idle(closed_after: float | None, said: Reply | None, limit: float) -> Finding:
    """RFC 5321 §4.5.3.2.7: a server waits at least 5 minutes for the next
    command, and says 421 when it gives up (§3.8)."""
    if closed_after is None:
        return Finding("idle-timeout", "pass", f"still open after {limit:g} s of silence")
    note = f"closed after {closed_after:.0f} s" + (f" with {said}" if said else "")
    if closed_after < RFC_MIN_IDLE:
        return Finding("idle-timeout", "fail", f"{note}: under RFC 5321's "
                       f"{RFC_MIN_IDLE:g} s")
    return Finding("idle-timeout", "pass", note)
