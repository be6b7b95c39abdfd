"""Log queries shared by the component checks (pure functions)."""
from __future__ import annotations

from collections import defaultdict

from mta import events as E
from sim.evidence.projections import RecipientLife, in_domain, replay


def smtp_address(argument: str) -> str:
    """The address in a MAIL/RCPT argument: ``TO:<a@b> X=y`` -> ``a@b``."""
    a = argument.strip()
    if a.upper().startswith(("TO:", "FROM:")):
        a = a.split(":", 1)[1].strip()
    if a.startswith("<"):
        end = a.rfind(">")
        return a[1:end] if end > 0 else a[1:]
    return a.split(" ", 1)[0]


def size_param(argument: str) -> int | None:
    """The SIZE=n of a MAIL argument, if declared."""
    for tok in argument.split():
        if tok.upper().startswith("SIZE="):
            try:
                return int(tok[5:])
            except ValueError:
                return None
    return None


def served(addr: str, domains: list[str]) -> bool:
    """``addr`` is a plain address at one of ``domains`` (no relay tricks).

    Percent hacks, bang paths, source routes and quoted local parts with an
    ``@`` or ``%`` are never "served": they are how open relays are probed.
    """
    a = addr.strip()
    if not a or a.startswith("@") or "!" in a or "@" not in a:
        return False
    local, _, dom = a.rpartition("@")
    if any(c in local for c in "%@:!") or '"' in local:
        return False
    dom = dom.lower().rstrip(".")
    return any(dom == d.lower().rstrip(".") for d in domains)


def replies_by_conn(events: list[E.Event], host: str) -> dict[str, list[E.SmtpReply]]:
    out: dict[str, list[E.SmtpReply]] = defaultdict(list)
    for e in events:
        if isinstance(e, E.SmtpReply) and e.host == host:
            out[e.conn].append(e)
    return out


def authenticated_before(replies: list[E.SmtpReply], t_index: int) -> bool:
    """A 2xx reply to AUTH came earlier on this connection."""
    return any(r.command.upper() == "AUTH" and 200 <= r.code < 300 for r in replies[:t_index])


def held_copies(events: list[E.Event], host: str, domain: str, t: float):
    """Queue entries on ``host`` for ``domain`` (and subdomains) at time t."""
    q = replay(events, t).queues.get(host, [])
    return [e for e in q if in_domain("x@" + e.domain, domain) or in_domain(e.rcpt, domain)]


def attempts_of(events: list[E.Event], host: str) -> dict[tuple[str, str], list[float]]:
    """(msg, rcpt) -> times of AttemptStarted on ``host``."""
    out: dict[tuple[str, str], list[float]] = defaultdict(list)
    for e in events:
        if isinstance(e, E.AttemptStarted) and e.host == host:
            for r in e.rcpts:
                out[(e.msg, r)].append(float(e.t))
    return out


def node_domain(argument: str) -> tuple[str, bool]:
    """RFC 1985 ETRN node: (domain, covers subdomains)."""
    a = argument.strip()
    if a.startswith("@"):
        return a[1:].lower().rstrip("."), True
    if a.startswith("#"):
        return a[1:].lower().rstrip("."), False
    return a.lower().rstrip("."), False


def lives_on(lives: list[RecipientLife], host: str) -> list[RecipientLife]:
    return [lf for lf in lives if lf.host == host]
