"""The probe dialogues: connect, gather the replies a judge needs, judge.

:func:`probe_target` runs every probe against one server and returns the
findings in a fixed order.  Each dialogue opens its own connections (so a
server's error counting in one never colours another), ends every
transaction with RSET, and sends DATA never: a relay attempt stops at the
RCPT reply.  The judges are :mod:`mta.probes.judge`.
"""
from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import dataclass

from mta.addresses import NMAP_DOMAIN, nmap_relay_probes
from mta.probes import judge as j
from mta.probes.client import HandshakeError, ProbeClient, TargetError
from mta.probes.findings import Finding, Reply

#: Relay forms tried per connection (servers count errors per session:
#: Postfix slows down after 10 and disconnects at 20).
FORMS_PER_SESSION = 5
#: Recipients sent per write when the server offers PIPELINING.
RCPT_CHUNK = 50


@dataclass(frozen=True)
class ProbeOptions:
    """What to probe and how (see ``mxsim probe --help``).

    ``domain`` is a domain the server takes mail for (local or relayed);
    ``rcpt`` a recipient there (default ``postmaster@domain``); ``token``
    makes this run's sender unique, so greylisting sees a new triplet.
    """

    host: str
    port: int = 25
    domain: str | None = None
    rcpt: str | None = None
    helo: str = "probe.mxsim.test"
    foreign: str = NMAP_DOMAIN
    recipients: int = j.RFC_MIN_RECIPIENTS + 1
    greylist_wait: float | None = None
    idle: float | None = None
    expect_banner: str | None = None
    token: str = "0"
    reply_timeout: float = 30.0
    tls_ca: str | None = None        # verify STARTTLS certificates against this CA file

    @property
    def recipient(self) -> str | None:
        return self.rcpt or (f"postmaster@{self.domain}" if self.domain else None)

    @property
    def sender(self) -> str:
        return f"probe-{self.token}@{self.helo}"

    def tls_context(self) -> ssl.SSLContext:
        """The client side of STARTTLS: certificates are not verified
        unless ``tls_ca`` names the CA to verify them against."""
        if self.tls_ca is not None:
            return ssl.create_default_context(cafile=self.tls_ca)
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context


async def _session(o: ProbeOptions) -> tuple[ProbeClient, Reply, dict[str, str]]:
    """A connection after its greeting and EHLO: (client, greeting, keywords)."""
    client, greeting = await ProbeClient.connect(o.host, o.port, reply_timeout=o.reply_timeout)
    if greeting.code != 220:
        return client, greeting, {}
    try:
        ehlo = await client.command(f"EHLO {o.helo}")
    except TargetError:
        await client.close(quit=False)
        raise
    return client, greeting, j.ehlo_keywords(ehlo) if ehlo.code == 250 else {}


async def probe_target(o: ProbeOptions) -> list[Finding]:
    """Every probe against ``o.host:o.port``; raises TargetError when the
    server cannot be talked to."""
    client, greeting = await ProbeClient.connect(o.host, o.port, reply_timeout=o.reply_timeout)
    findings = [j.judge_banner(greeting, o.expect_banner)]
    if greeting.code != 220:
        await client.close()
        return findings + [Finding(p, "skip", f"the server refused the session "
                                   f"({greeting.code})") for p in _AFTER_BANNER]
    try:
        basics, keywords = await _basics(client, o)
    finally:
        await client.close()
    findings += basics
    findings.append(await _size(o, keywords))
    relay, auth_mail, auth_reply = await _relay(o, greeting)
    findings.append(relay)
    starttls = "STARTTLS" in keywords
    tls = await _over_tls(o, greeting) if starttls else \
        _Tls(j.judge_starttls(False, None, None, None, False))
    # AUTH is judged where the server offers it: on the TLS session when
    # there is one (smtpd_tls_auth_only), else on the cleartext relay try.
    findings += [tls.auth_relay or j.judge_auth_relay("AUTH" in keywords, auth_reply, auth_mail),
                 tls.finding, j.judge_auth_cleartext(keywords, tls.keywords, starttls)]
    grey = await _greylisting(o)
    findings.append(await _recipient_limit(o, "PIPELINING" in keywords))
    findings.append(await _etrn(o, "ETRN" in keywords))
    findings.append(grey)
    findings.append(await _pipelining(o, "PIPELINING" in keywords))
    if o.idle is not None:
        findings.append(await _idle(o))
    else:
        findings.append(Finding("idle-timeout", "skip", "not measured (--idle SECONDS)"))
    return findings


_AFTER_BANNER = ("helo", "reply-codes", "enhanced-codes", "size", "open-relay", "auth-relay",
                 "starttls", "auth-cleartext", "recipient-limit", "etrn", "greylisting", "pipelining", "idle-timeout")


async def _basics(c: ProbeClient, o: ProbeOptions) -> tuple[list[Finding], dict[str, str]]:
    """HELO checks, the reply-code table and enhanced codes, on one session."""
    bare = await c.command("HELO")
    ehlo = await c.command(f"EHLO {o.helo}")
    keywords = j.ehlo_keywords(ehlo) if ehlo.code == 250 else {}
    seen: list[tuple[str, Reply]] = []
    for what, line in (("NOOP", "NOOP"), ("RSET", "RSET"),
                       ("unknown command", "XMXSIMPROBE"),
                       ("RCPT before MAIL", f"RCPT TO:<postmaster@{o.foreign}>"),
                       ("MAIL with bad syntax", "MAIL FROM:<no-closing-bracket@x.test")):
        seen.append((what, await c.command(line)))
    mail = await c.command(f"MAIL FROM:<{o.sender}>")
    if mail.klass == 2:
        seen.append(("DATA before RCPT", await c.command("DATA")))
        seen.append(("second MAIL", await c.command(f"MAIL FROM:<{o.sender}>")))
    await c.command("RSET")
    return [j.judge_helo(bare, ehlo), j.judge_reply_codes(seen),
            j.judge_enhanced(seen + [("MAIL", mail)], "ENHANCEDSTATUSCODES" in keywords)], keywords


async def _size(o: ProbeOptions, keywords: dict[str, str]) -> Finding:
    limit = j.size_limit(keywords)
    if not limit:
        return j.judge_size(limit, None, None)
    c, _, _ = await _session(o)
    try:
        over = await c.command(f"MAIL FROM:<{o.sender}> SIZE={limit + 1}")
        await c.command("RSET")
        under = await c.command(f"MAIL FROM:<{o.sender}> SIZE=1000")
        await c.command("RSET")
    finally:
        await c.close()
    return j.judge_size(limit, over, under)


def _address(host: str) -> str:
    try:
        return socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)[0][4][0]
    except OSError:
        return host


async def _relay(o: ProbeOptions, greeting: Reply) -> tuple[Finding, Reply, Reply | None]:
    """nmap's 16 relay forms (and the same three with ``domain`` as the
    relaying host), RSET after each RCPT.  Returns the finding and the
    first form's MAIL and RCPT replies (for the AUTH judge)."""
    srv = (greeting.lines[0].split(" ", 1)[0] if greeting.lines else "") or o.host
    forms = nmap_relay_probes(srv, _address(o.host), o.foreign)
    if o.domain:
        t, f = "relaytest", o.foreign
        forms += [(f"<{o.sender}>", f"<{t}%{f}@{o.domain}>"),
                  (f"<{o.sender}>", f"<{t}@{f}@{o.domain}>"),
                  (f"<{o.sender}>", f"<@{o.domain}:{t}@{f}>")]
    attempts = []
    for start in range(0, len(forms), FORMS_PER_SESSION):
        c, greet, _ = await _session(o)
        try:
            if greet.code != 220:
                raise TargetError(f"{c.where}: greeting {greet} on a later connection")
            for mail_arg, rcpt_arg in forms[start:start + FORMS_PER_SESSION]:
                mail = await c.command(f"MAIL FROM:{mail_arg}")
                rcpt = await c.command(f"RCPT TO:{rcpt_arg}") if mail.klass == 2 else None
                await c.command("RSET")
                attempts.append((mail_arg, rcpt_arg, mail, rcpt))
        finally:
            await c.close()
    return j.judge_relay(attempts), attempts[0][2], attempts[0][3]


@dataclass(frozen=True)
class _Tls:
    """What the STARTTLS session showed: its finding, the EHLO keywords
    after the upgrade (None: no TLS session) and the AUTH judgement made
    on it."""

    finding: Finding
    keywords: dict[str, str] | None = None
    auth_relay: Finding | None = None


async def _over_tls(o: ProbeOptions, greeting: Reply) -> _Tls:
    """Upgrade a fresh session with STARTTLS, EHLO again, and try the first
    relay form unauthenticated there (RFC 3207 §4.2: the server forgets
    what it said before TLS, and a server with ``smtpd_tls_auth_only``
    offers AUTH only now)."""
    srv = (greeting.lines[0].split(" ", 1)[0] if greeting.lines else "") or o.host
    mail_arg, rcpt_arg = nmap_relay_probes(srv, _address(o.host), o.foreign)[0]
    c, _, _ = await _session(o)
    verified = o.tls_ca is not None
    try:
        try:
            started = await c.starttls(o.tls_context(), o.host if verified else None)
        except HandshakeError as exc:
            await c.close(quit=False)
            return _Tls(j.judge_starttls(True, None, str(exc), None, verified))
        if started.code != 220:
            return _Tls(j.judge_starttls(True, started, None, None, verified))
        ehlo = await c.command(f"EHLO {o.helo}")
        keywords = j.ehlo_keywords(ehlo) if ehlo.code == 250 else {}
        mail = await c.command(f"MAIL FROM:{mail_arg}")
        rcpt = await c.command(f"RCPT TO:{rcpt_arg}") if mail.klass == 2 else None
        await c.command("RSET")
    finally:
        if not c.writer.is_closing():
            await c.close()
    note = c.tls + ("" if verified else ", certificate not verified")
    return _Tls(j.judge_starttls(True, started, None, c.tls, verified), keywords,
                j.judge_auth_relay("AUTH" in keywords, rcpt, mail, tls=note))


async def _first_rcpt(o: ProbeOptions) -> Reply:
    c, _, _ = await _session(o)
    try:
        await c.command(f"MAIL FROM:<{o.sender}>")
        reply = await c.command(f"RCPT TO:<{o.recipient}>")
        await c.command("RSET")
    finally:
        await c.close()
    return reply


async def _greylisting(o: ProbeOptions) -> Finding:
    if o.recipient is None:
        return Finding("greylisting", "skip", "needs --domain (or --rcpt)")
    first = await _first_rcpt(o)
    if first.klass != 4 or o.greylist_wait is None:
        return j.judge_greylist(first, None, None)
    await asyncio.sleep(o.greylist_wait)
    return j.judge_greylist(first, await _first_rcpt(o), o.greylist_wait)


async def _recipient_limit(o: ProbeOptions, pipelining: bool) -> Finding:
    if o.recipient is None:
        return Finding("recipient-limit", "skip", "needs --domain (or --rcpt)")
    c, _, _ = await _session(o)
    try:
        mail = await c.command(f"MAIL FROM:<{o.sender}>")
        if mail.klass != 2:
            return Finding("recipient-limit", "skip", f"MAIL refused ({mail})")
        replies = await _rcpts(c, f"RCPT TO:<{o.recipient}>", o.recipients,
                               RCPT_CHUNK if pipelining else 1)
    finally:
        await c.close()
    return j.judge_recipient_limit(replies, o.recipients)


async def _rcpts(c: ProbeClient, line: str, count: int, step: int) -> list[Reply]:
    """Up to ``count`` RCPTs, ``step`` per write, until one is refused;
    then RSET.  A server that hangs up after refusing (an error limit) has
    shown its limit: the replies so far are returned."""
    replies = [await c.command(line)]
    while replies[-1].klass == 2 and len(replies) < count:
        n = min(step, count - len(replies))
        await c.send(*[line] * n)
        for _ in range(n):
            try:
                replies.append(await c.read_reply("RCPT"))
            except TargetError:
                if all(r.klass == 2 for r in replies):
                    raise
                return replies
        if any(r.klass != 2 for r in replies):
            replies = replies[:next(i for i, r in enumerate(replies) if r.klass != 2) + 1]
            break
    try:
        await c.command("RSET")
    except TargetError:
        pass
    return replies


async def _etrn(o: ProbeOptions, offered: bool) -> Finding:
    c, _, _ = await _session(o)
    try:
        reply = await c.command(f"ETRN {o.domain or o.foreign}")
    finally:
        await c.close()
    return j.judge_etrn(offered, reply)


async def _pipelining(o: ProbeOptions, offered: bool) -> Finding:
    if not offered:
        return j.judge_pipelining(False, [], [])
    lines = [f"MAIL FROM:<{o.sender}>", f"RCPT TO:<{o.recipient or 'postmaster'}>",
             "RSET", "NOOP"]
    c, _, _ = await _session(o)
    try:
        replies = await c.pipeline(lines)
    finally:
        await c.close()
    return j.judge_pipelining(True, lines, replies)


async def _idle(o: ProbeOptions) -> Finding:
    c, _, _ = await _session(o)
    closed, said = None, None
    try:
        closed, said = await c.idle_until_closed(o.idle)
    finally:
        await c.close(quit=closed is None)
    return j.judge_idle(closed, said, o.idle)
