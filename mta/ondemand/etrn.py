"""ETRN (RFC 1985): the request decision, the release, and the answer.

Three steps, the outer two pure: :func:`decide_etrn` parses the argument
and checks the session, the client and the domain, giving either the reply
at once or an :class:`EtrnRelease`; :func:`release` asks the queue (the
I/O); :func:`etrn_answer` turns the counts into the reply for the
configured style.  :func:`etrn_reply` runs the three in order.

``ETRN [@|#]node``: a plain node is a host or domain; ``@domain`` covers the
domain and its subdomains; ``#name`` names a queue, which here is the queue
of the domain of that name (as the PSI seed's ``ETRN #domain.com`` expects).
The server asks its :class:`mta.interfaces.ReleaseTarget` to start delivery
over new connections and answers at once.

Replies (RFC 1985 §5; Postfix ``etrn_cmd`` texts where Postfix has one):

=====  ==============================================================
250    "Queuing started" (``style="postfix"``: Postfix never counts), or
       "OK, queue -R '<d>' started" (``style="queue-run"``: the reply the
       dial-up service description quotes, of a server that starts a
       ``-R`` queue run for the domain; it never counts either)
251    "OK, no messages waiting for node <d>"
252    "OK, pending messages for node <d> started" (mail is held but none
       could be started now, e.g. already being delivered)
253    "OK, <n> pending messages for node <d> started"
458    "Unable to queue messages for node <d>" (no queue, or it failed)
459    "<d>: service unavailable" (not an ETRN domain: Postfix's
       fast_flush_domains) or "<d>: Client host rejected: Access denied"
500    "Syntax: ETRN domain" (no argument, or more than one)
501    "Error: invalid parameter syntax"
502    "5.5.1 Error: command not implemented" (ETRN switched off)
503    "Error: MAIL transaction in progress"
=====  ==============================================================
"""
from __future__ import annotations

from dataclasses import dataclass

from mta.addresses import domain_matches, valid_domain
from mta.interfaces import ReleaseTarget
from mta.policy.access import Networks

STYLES = ("rfc1985", "postfix", "queue-run")


class EtrnSyntaxError(ValueError):
    """The ETRN argument is missing or malformed; carries the reply."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code} {text}")
        self.code = code
        self.text = text


@dataclass(frozen=True, slots=True)
class EtrnArg:
    """A parsed ETRN argument.  ``kind`` is ``node``, ``domain`` (``@``)
    or ``queue`` (``#``); ``name`` is lower-case without the prefix."""

    kind: str
    name: str

    @property
    def include_subdomains(self) -> bool:
        return self.kind == "domain"


def parse_etrn(arg: str | None) -> EtrnArg:
    """Parse the text after ``ETRN``; raises :class:`EtrnSyntaxError`."""
    words = (arg or "").split()
    if len(words) != 1:
        raise EtrnSyntaxError(500, "Syntax: ETRN domain")
    word = words[0]
    kind = {"@": "domain", "#": "queue"}.get(word[0], "node")
    name = word[1:] if kind != "node" else word
    name = name.lower()
    if name.endswith("."):  # an absolute name: same domain
        name = name[:-1]
    if not name or name.startswith("[") or not valid_domain(name):
        raise EtrnSyntaxError(501, "Error: invalid parameter syntax")
    return EtrnArg(kind, name)


@dataclass(frozen=True)
class EtrnPolicy:
    """Who may ask ETRN for what.

    ``domains``: domains whose mail ETRN may release (Postfix's
    ``fast_flush_domains``, default ``$relay_domains``; a ``.example``
    entry covers subdomains); ``None`` allows any domain.
    ``clients``: networks allowed to use ETRN (None: any client, Postfix's
    empty ``smtpd_etrn_restrictions``).  ``style``: ``rfc1985`` answers
    251/252/253 with counts, ``postfix`` always "250 Queuing started".
    """

    enabled: bool = True
    domains: tuple[str, ...] | None = None
    clients: Networks | None = None
    style: str = "rfc1985"

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"ETRN style must be one of {STYLES}")


@dataclass(frozen=True, slots=True)
class EtrnResult:
    """The reply to one ETRN and what it started."""

    code: int
    text: str
    domain: str = ""
    released: int = 0
    error: str = ""          # the queue's exception when it could not release (458)

    @property
    def reply(self) -> str:
        return f"{self.code} {self.text}"


@dataclass(frozen=True, slots=True)
class EtrnRelease:
    """An ETRN that is allowed: the mail to release."""

    domain: str
    include_subdomains: bool


def decide_etrn(arg: str | None, *, policy: EtrnPolicy, in_transaction: bool,
                client_ip: str) -> EtrnRelease | EtrnResult:
    """The reply to ``ETRN arg`` when it is refused, else what to release."""
    if not policy.enabled:
        return EtrnResult(502, "5.5.1 Error: command not implemented")
    if in_transaction:
        return EtrnResult(503, "Error: MAIL transaction in progress")
    try:
        parsed = parse_etrn(arg)
    except EtrnSyntaxError as exc:
        return EtrnResult(exc.code, exc.text)
    d = parsed.name
    if policy.clients is not None and client_ip not in policy.clients:
        return EtrnResult(459, f"<{d}>: Client host rejected: Access denied", d)
    if policy.domains is not None and not domain_matches(d, policy.domains):
        return EtrnResult(459, f"<{d}>: service unavailable", d)
    return EtrnRelease(d, parsed.include_subdomains)


def unable(domain: str, error: str = "") -> EtrnResult:
    """458: there is no queue, or it could not release (RFC 1985 §5)."""
    return EtrnResult(458, f"Unable to queue messages for node {domain}", domain, error=error)


def release(request: EtrnRelease, target: ReleaseTarget, client_ip: str) -> tuple[int, int]:
    """Ask ``target`` to start the held mail: (messages held, messages started)."""
    held = target.held_count(request.domain, request.include_subdomains)
    started = target.release(request.domain, request.include_subdomains, "etrn", client_ip)
    return held, started


def etrn_answer(domain: str, held: int, started: int, style: str) -> EtrnResult:
    """The reply once the release ran: counts (RFC 1985), or a 250 without
    counts (Postfix's text, or the quoted queue-run text)."""
    if style == "postfix":
        return EtrnResult(250, "Queuing started", domain, started)
    if style == "queue-run":
        return EtrnResult(250, f"OK, queue -R '{domain}' started", domain, started)
    if started > 0:
        return EtrnResult(253, f"OK, {started} pending messages for node {domain} started", domain, started)
    if held > 0:
        return EtrnResult(252, f"OK, pending messages for node {domain} started", domain, 0)
    return EtrnResult(251, f"OK, no messages waiting for node {domain}", domain, 0)


def etrn_reply(arg: str | None, *, policy: EtrnPolicy, in_transaction: bool,
               client_ip: str, target: ReleaseTarget | None) -> EtrnResult:
    """Decide, release through ``target`` when allowed, answer."""
    decided = decide_etrn(arg, policy=policy, in_transaction=in_transaction, client_ip=client_ip)
    if isinstance(decided, EtrnResult):
        return decided
    if target is None:
        return unable(decided.domain)
    try:
        held, started = release(decided, target, client_ip)
    except Exception as exc:  # the queue is unavailable: RFC 1985 says 458
        # The client only learns 458; the caller records the cause.
        return unable(decided.domain, f"{type(exc).__name__}: {exc}")
    return etrn_answer(decided.domain, held, started, policy.style)
