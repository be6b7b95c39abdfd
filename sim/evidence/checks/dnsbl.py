"""The block-list check (seed 003: "Client IPs checked with Spamhaus-XBL
and ORDB"): listed clients refused, unlisted ones not, and a list that does
not answer handled by the configured fail policy."""
from __future__ import annotations

from mta import events as E
from sim.evidence.checks.base import check, cx, ip_matches, undecidable, verdict
from sim.evidence.checks.params.dnsbl import DnsblParams
from sim.evidence.model import Evidence


#: PolicyDecision values of the dnsbl stage for a list that gave no usable answer.
_UNANSWERED = ("fail-open", "fail-closed")


def _dnsbl_decided(rs: list[E.SmtpReply]) -> bool:
    """The connection got as far as the block lists' verdict: a RCPT (where
    Postfix applies client restrictions) or a refusal at the greeting."""
    return any(r.command.upper() == "RCPT" for r in rs) or \
        (rs[0].command.upper() == "CONNECT" and rs[0].code >= 400)


@check("dnsbl-check")
def dnsbl_check(ev: Evidence, params: DnsblParams):
    """Listed clients are refused, unlisted ones are not; a list that does
    not answer follows the fail policy.

    Params (:class:`DnsblParams`): ``host``, ``listed`` (the truth: the
    addresses the scenario's zones list), ``fail``.  Per connection that
    reached the lists' verdict (a RCPT, or a refused greeting): from a
    listed address it must get a 5xx and have no 2xx RCPT and no message
    accepted; from an unlisted one no reply decided by the ``dnsbl`` stage
    may be a 5xx.  A connection whose lists did not answer (a ``dnsbl``
    PolicyDecision ``fail-open``/``fail-closed``) is judged by ``fail``
    instead: ``closed`` must refuse (4xx), ``open`` must not refuse by the
    lists.  Those are extra: a run with timeouts only, or without both a
    listed and an unlisted client, is undecidable.
    """
    gid = "dnsbl-check"
    host, listed, fail = params.host, params.listed, params.fail
    accepted = {e.conn for e in ev.of(E.MessageAccepted) if e.host == host}
    decisions: dict[str, list[E.PolicyDecision]] = {}
    for e in ev.of(E.PolicyDecision):
        if e.host == host and e.stage == "dnsbl":
            decisions.setdefault(e.conn, []).append(e)
    cxs, refused, passed, timeouts = [], 0, 0, 0
    for conn, rs in ev.replies_by_conn(host).items():
        if not rs:
            continue
        ip, pds = rs[0].client_ip, decisions.get(conn, [])
        unanswered = [pd for pd in pds if pd.decision in _UNANSWERED]
        by_list = [r for r in rs if r.stage == "dnsbl" and r.code >= 400]
        if unanswered and not any(pd.decision == "listed" for pd in pds):
            timeouts += 1
            pd = unanswered[0]
            where = dict(hosts=[host], times=[pd.t], events=[pd] + rs[:4])
            if fail == "closed" and not any(400 <= r.code < 500 for r in by_list):
                cxs.append(cx(f"block list did not answer for {ip} (fail closed), but the "
                              f"client was not deferred", **where))
            if fail == "open" and by_list:
                cxs.append(cx(f"block list did not answer for {ip} (fail open), but the "
                              f"lists refused the client", **where))
            continue
        if not _dnsbl_decided(rs):
            continue                     # stopped before the lists decide (530, 554...)
        where = dict(hosts=[host], times=[rs[0].t], events=rs[:6])
        if ip_matches(ip, listed):
            refused += 1
            took = [r for r in rs if r.command.upper() == "RCPT" and 200 <= r.code < 300]
            if conn in accepted or took or not any(r.code >= 500 for r in rs):
                cxs.append(cx(f"listed client {ip} was not refused", **where))
        else:
            passed += 1
            if any(r.code >= 500 for r in by_list):
                cxs.append(cx(f"unlisted client {ip} refused by the block lists: "
                              f"{by_list[0].code} {by_list[0].text}", **where))
    if refused == 0 or passed == 0:
        return undecidable(gid, f"{refused} connections from listed clients and {passed} from "
                                f"unlisted ones reached the lists' verdict at {host} (and "
                                f"{timeouts} met a list that did not answer): both kinds are "
                                f"needed")
    return verdict(gid, cxs, ok=f"{refused} listed connections refused, {passed} unlisted "
                                f"accepted; {timeouts} unanswered lookups handled fail-"
                                f"{fail or 'any'}",
                   bad="{n} DNSBL violations",
                   judged=refused + passed + timeouts, unit="connections judged by the lists")
