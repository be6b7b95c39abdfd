"""Usage per account (sim/report/usage.py): who sent what through a relay,
hour by hour, and the account whose rate jumps."""
from __future__ import annotations

from mta import events as E
from sim.evidence.handlog import LogBuilder
from sim.evidence.model import Evidence
from sim.report.markdown import render_md
from sim.evidence.verdict import build_verdict
from sim.report.usage import account_usage, usage_rows

R = "relay.example"


def sent(L: LogBuilder, t: float, user: str, n_rcpt: int = 1, how: str = "auth") -> None:
    conn = L.accept(t, R, f"{R}/m{len(L.events)}", f"{user}.{t}@x",
                    [f"r{i}@example.net" for i in range(n_rcpt)], client_ip="198.51.100.5")
    stage, decision = (("smtp-auth", "pass") if how == "auth"
                       else ("pop-before-smtp", "relay-permitted"))
    L.add(E.PolicyDecision(t=t, host=R, conn=conn, stage=stage, decision=decision,
                           detail=f"mechanism=PLAIN user={user}" if how == "auth"
                           else f"pop-before-smtp user={user} until=9999.000",
                           client_ip="198.51.100.5"))


def test_a_jump_against_the_accounts_own_habit_is_flagged() -> None:
    L = LogBuilder()
    for h in range(5):                       # kim: 2 an hour, then 30 in hour 3
        for k in range(30 if h == 3 else 2):
            sent(L, h * 3600 + 60 + k * 60, "kim")
    for h in (0, 1, 2):                      # lou: a list from the start, 120 recipients
        for k in range(12):
            sent(L, h * 3600 + 100 + k * 100, "lou", n_rcpt=10)
    sent(L, 600, "alice", how="pop")
    usage = {u.account: u for u in account_usage(Evidence(L.end(5 * 3600)))}
    assert usage["kim"].flagged_hour == 3 and usage["kim"].hours[3] == (30, 30, 30000)
    assert usage["lou"].flagged_hour is None and usage["lou"].totals == (36, 360, 36000)
    assert (usage["alice"].how, usage["alice"].totals[0]) == ("pop", 1)
    rows = {r["account"]: r for r in usage_rows(Evidence(L.events))}
    assert rows["kim"]["flag"].startswith("possibly compromised: 30 messages in hour 3")
    assert rows["lou"]["flag"] == "" and rows["lou"]["peak_hour"] == 0


def test_the_report_shows_the_table_only_when_accounts_sent() -> None:
    L = LogBuilder()
    sent(L, 60, "kim")
    ev = Evidence(L.end(3600))
    assert "## Usage per account" in render_md(build_verdict(ev), ev)
    L = LogBuilder()
    L.accept(60, R, f"{R}/m1", "t@x", ["a@example.net"])
    ev = Evidence(L.end(3600))
    assert "Usage per account" not in render_md(build_verdict(ev), ev)
