"""DNS block lists (RFC 5782) as a pure stage.

The stage asks for one ``dnsbl`` lookup per zone at connect time; the server
answers them (mta.policy.chain.prefetch) and the stage judges the answers:

* an answer in 127.0.0.0/8 is a listing, unless it is in 127.255.255.0/24,
  which list operators use for errors (Spamhaus 127.255.255.252/254/255:
  "query refused", "public resolver"): an error, never a listing;
* an answer outside 127/8 is not a listing either (a broken list or a
  wildcarding resolver), and is noted;
* a zone may restrict which codes count (Spamhaus ZEN XBL: 127.0.0.4-7);
* when a list does not answer (timeout, SERVFAIL) or answers with an error
  code, the zone's ``fail`` mode applies: ``open`` skips it, ``closed``
  defers the client with 451 4.7.1.  Either way a PolicyDecision is logged.

The rejection text is Postfix's ``reject_rbl_client`` default:
"554 5.7.1 Service unavailable; Client host [ip] blocked using zone".
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from mta.policy.access import Networks
from mta.policy.chain import Stage
from mta.policy.decision import Decision, Facts, Lookup, Note, Phase

LISTED_CODE = 554
LISTED_STATUS = "5.7.1"
FAIL_CLOSED_CODE = 451
FAIL_CLOSED_STATUS = "4.7.1"

_LOOPBACK_NET = ipaddress.ip_network("127.0.0.0/8")
_ERROR_NET = ipaddress.ip_network("127.255.255.0/24")


@dataclass(frozen=True)
class DnsblZone:
    """One block list.  ``codes``: the answers that count as listed (empty:
    any 127.0.0.x); ``fail``: ``open`` or ``closed``."""

    zone: str
    codes: tuple[str, ...] = ()
    fail: str = "open"

    def __post_init__(self) -> None:
        if self.fail not in ("open", "closed"):
            raise ValueError(f"dnsbl {self.zone}: fail must be 'open' or 'closed'")
        for c in self.codes:
            if ipaddress.ip_address(c) not in _LOOPBACK_NET:
                raise ValueError(f"dnsbl {self.zone}: code {c} is not in 127.0.0.0/8")


def classify(answers: tuple[str, ...], codes: tuple[str, ...] = ()) -> str:
    """``listed``, ``error`` (an RFC 5782 error answer), ``bogus`` (answers
    outside 127/8) or ``clean`` for a list's A answers."""
    kinds = []
    for a in answers:
        try:
            ip = ipaddress.ip_address(a)
        except ValueError:
            kinds.append("bogus")
            continue
        if ip in _ERROR_NET:
            kinds.append("error")
        elif ip in _LOOPBACK_NET:
            kinds.append("listed" if not codes or a in codes else "clean")
        else:
            kinds.append("bogus")
    for k in ("listed", "error", "bogus"):
        if k in kinds:
            return k
    return "clean"


@dataclass
class DnsblStage(Stage):
    """Refuse clients listed in any of ``zones``, at ``phase`` (CONNECT or
    RCPT; Postfix decides client restrictions at RCPT by default)."""

    zones: tuple[DnsblZone, ...]
    phase: Phase = Phase.RCPT
    exempt: Networks = field(default_factory=Networks)
    name: str = "dnsbl"

    def lookups(self, phase: Phase, facts: Facts):
        # Ask as early as possible (connect); IPv6 clients are not looked up
        # (RFC 5782 IPv6 lists use nibbles; none is configured here).
        if phase is not Phase.CONNECT or facts.client_ip in self.exempt:
            return ()
        if ipaddress.ip_address(facts.client_ip).version != 4:
            return ()
        return [Lookup("dnsbl", facts.client_ip, z.zone) for z in self.zones]

    def _judge(self, facts: Facts) -> Decision | None:
        if facts.client_ip in self.exempt:
            return None
        notes: list[Note] = []
        for z in self.zones:
            res = facts.dns.get(Lookup("dnsbl", facts.client_ip, z.zone))
            if res is None:
                continue  # not looked up (IPv6)
            verdict = "error" if res.error else classify(res.answers, z.codes)
            what = res.error or ",".join(res.answers)
            if verdict == "listed":
                return Decision.reject(
                    self.name, LISTED_CODE, LISTED_STATUS,
                    f"Service unavailable; Client host [{facts.client_ip}] "
                    f"blocked using {z.zone}",
                    notes=tuple(notes) + (Note("listed", f"{z.zone} {what}"),))
            if verdict == "bogus":
                notes.append(Note("bogus-answer", f"{z.zone} {what}"))
            elif verdict == "error":
                detail = f"{z.zone} {what}"
                if z.fail == "closed":
                    return Decision.defer(
                        self.name, FAIL_CLOSED_CODE, FAIL_CLOSED_STATUS,
                        f"Service unavailable; Client host [{facts.client_ip}] "
                        f"could not be checked against {z.zone}, try again later",
                        notes=tuple(notes) + (Note("fail-closed", detail),))
                notes.append(Note("fail-open", detail))
        if notes:
            return Decision.accept(self.name, notes=tuple(notes))
        return None

    def on_connect(self, facts: Facts) -> Decision | None:
        return self._judge(facts) if self.phase is Phase.CONNECT else None

    def on_rcpt(self, facts: Facts, rcpt) -> Decision | None:
        # Judge once per transaction: notes for the first recipient only.
        if self.phase is not Phase.RCPT:
            return None
        d = self._judge(facts)
        if d is not None and not d.refused and facts.rcpts:
            return None
        return d
