"""The authenticated relay's abusers (sim/actors/abusers.py) in the library
run of seed 003 and in small worlds of their own."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest

from mta import events as E
from sim.pipeline import load_string, run_scenario
from sim.scenario.loader import ScenarioError, load_scenario

LIBRARY = Path(__file__).resolve().parents[1] / "scenarios"
RELAY = "relay.gconnect.example"


@lru_cache(maxsize=None)
def library_log() -> tuple[E.Event, ...]:
    sc = load_scenario(LIBRARY / "auth-relay-limits.yaml")
    return tuple(run_scenario(sc, write=False).events)


def submissions(events, actor: str) -> list[E.ClientSubmission]:
    return [e for e in events if isinstance(e, E.ClientSubmission) and e.actor == actor]


@pytest.mark.slow
def test_list_abuser_resends_the_refused_recipients_thirty_at_a_time() -> None:
    events = library_log()
    subs = submissions(events, "list-abuser1")
    assert [(s.outcome, s.detail) for s in subs] == [
        ("sent", "200 recipients in 7 transactions")] * 2
    mine = [e for e in events if isinstance(e, E.MessageAccepted) and e.host == RELAY
            and e.mail_from == "lou@example.org"]
    assert [len(m.rcpts) for m in mine] == [30] * 6 + [20] + [30] * 6 + [20]
    first = {r for m in mine[:7] for r in m.rcpts}
    assert first == {f"member{i}@example.net" for i in range(1, 201)}
    over = [e for e in events if isinstance(e, E.SmtpReply) and e.host == RELAY
            and e.command == "RCPT" and e.code == 452]
    assert over and {e.text for e in over} == {"4.5.3 Error: too many recipients"}


@pytest.mark.slow
def test_large_sender_declares_size_unless_told_not_to() -> None:
    events = library_log()
    mail = [e for e in events if isinstance(e, E.SmtpReply) and e.host == RELAY
            and e.command == "MAIL" and e.mail_from in (None, "") and "SIZE=" in e.argument]
    assert len(mail) == 2 and all(e.code == 552 for e in mail)
    assert [s.detail for s in submissions(events, "large-sender3")] == [
        "DATA: 5.3.4 Message size exceeds fixed limit"]
    # The refused message was never queued, whole or in part.
    assert not [e for e in events if isinstance(e, E.MessageAccepted)
                and e.mail_from in ("ben@example.org", "bea@example.org")]


@pytest.mark.slow
def test_compromised_account_bursts_on_top_of_its_habit() -> None:
    events = library_log()
    times = [s.t for s in submissions(events, "compromised-account4")]
    hours = [sum(1 for t in times if h * 3600 <= t < (h + 1) * 3600) for h in range(6)]
    assert hours[3] >= 40 and max(hours[:3] + hours[4:]) <= 2
    burst = [e for e in events if isinstance(e, E.MessageAccepted) and e.host == RELAY
             and e.mail_from == "kim@example.org" and e.rcpts[0].startswith("target")]
    # Fixed arrivals come one interval after the start: 3h01:30 ... 3h58:30.
    assert len(burst) == 39 and burst[0].t == pytest.approx(3 * 3600 + 90, abs=1)


SMALL = """
name: abusers-small
seed: 3
duration: 2h
hosts:
  - {name: relay.example, address: 192.0.2.1}
  - {name: c.example, address: 198.51.100.1}
  - {name: mx.example.net, address: 192.0.2.2}
dns:
  zones: |
    $ORIGIN example.net.
    @  MX 10 mx.example.net.
    mx A  192.0.2.2
roles:
  - {role: relay, host: relay.example, auth: {users: {u: pw}}, recipient_limit: 30}
  - {role: primary-mx, host: mx.example.net, local_domains: example.net}
traffic:
  - kind: list-abuser
    host: c.example
    relay: relay.example
    ports: [25]
    auth: {user: u, password: pw}
    rate: 1/h
    arrivals: fixed
    count: 1
    recipients: 100
    batches: BATCHES
    from: u@example.org
    to: "m{n}@example.net"
"""


@pytest.mark.parametrize("batches,outcome", [(20, "sent"), (2, "rejected")])
def test_list_abuser_stops_after_its_batches(batches: int, outcome: str) -> None:
    sc = load_string(SMALL.replace("BATCHES", str(batches)))
    events = run_scenario(sc, write=False).events
    [sub] = [e for e in events if isinstance(e, E.ClientSubmission)]
    assert sub.outcome == outcome
    if outcome == "rejected":
        assert sub.code == 452 and sub.detail.startswith("60 recipients sent in 2 transactions, "
                                                         "40 refused")


def test_compromised_account_needs_a_burst() -> None:
    text = SMALL.replace("kind: list-abuser", "kind: compromised-account").replace(
        "    batches: BATCHES\n", "").replace("    recipients: 100\n", "")
    with pytest.raises(ScenarioError, match="burst"):
        load_string(text)
