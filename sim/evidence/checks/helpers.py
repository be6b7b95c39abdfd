"""Reading SMTP arguments and delivery rounds: pure helpers the checks share."""
from __future__ import annotations

from mta import events as E
from sim.evidence.lifecycle import RecipientLife


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


def authenticated_before(replies: list[E.SmtpReply], t_index: int) -> bool:
    """A 2xx reply to AUTH came earlier on this connection."""
    return any(r.command.upper() == "AUTH" and 200 <= r.code < 300 for r in replies[:t_index])


def node_domain(argument: str) -> tuple[str, bool]:
    """RFC 1985 ETRN node: (domain, covers subdomains)."""
    a = argument.strip()
    if a.startswith("@"):
        return a[1:].lower().rstrip("."), True
    if a.startswith("#"):
        return a[1:].lower().rstrip("."), False
    return a.lower().rstrip("."), False


def is_give_up(b: E.Bounced) -> bool:
    """A bounce after transient failures (queue lifetime over), not a 5xx."""
    text = f"{b.reason} {b.text}".lower()
    return (400 <= b.code < 500 or "expire" in text or "lifetime" in text
            or "4.4.7" in text or "5.4.7" in text)


def _stamp(e: E.Event) -> float:
    return e.t


def delivery_rounds(life: RecipientLife) -> list[float]:
    """Start times of the delivery rounds of one copy.

    A round is the run of AttemptStarted events (one per MX host tried)
    until the Deferred that ends it; its time is its first attempt.
    """
    if not life.deferrals:
        # Nothing ends a round: one round, from the earliest attempt (the
        # common case, without the sort of the copy's whole story).
        return [float(min(a.t for a in life.attempts))] if life.attempts else []
    starts: list[float] = []
    open_round = False
    for ev in sorted(life.events, key=_stamp):
        if isinstance(ev, E.AttemptStarted) and not open_round:
            starts.append(float(ev.t))
            open_round = True
        elif isinstance(ev, E.Deferred):
            open_round = False
    return starts
