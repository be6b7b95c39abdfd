"""The SMTP feed's operator actions (seed 001): extend a client's queue
time, switch it to temporary POP3 mailboxes and back; validated in the
scenario, carried out by mta.feed.operations, judged from the log."""
from __future__ import annotations

import pytest

from mta import events as ev
from sim.events import MailRetrieved
from sim.pipeline import load_string, run_scenario
from sim.scenario.loader import ScenarioError
from sim.scenario.roles import FEED_RETRY
from sim.convert import retry_schedule
from mta.retry.presets import timeline

H = 3600.0
FEED, CLIENT = "feed.provider.example", "mail.client.example"

WORLD = """
name: feed-ops
seed: 5
duration: DURATION
hosts:
  - {name: feed.provider.example, address: 192.0.2.80}
  - name: mail.client.example
    address: 198.51.100.20
    link: {schedule: {kind: outages, outages: [{start: 1h, for: OUTAGE}]}, down_connect: refuse}
  - {name: mta.sender.example, address: 203.0.113.25}
  - {name: office.client.example, address: 198.51.100.40}
dns:
  zones: |
    $ORIGIN client.example.
    @     MX 10 feed.provider.example.
    mail  A  198.51.100.20
    $ORIGIN provider.example.
    feed  A  192.0.2.80
    $ORIGIN sender.example.
    @     MX 10 mta.sender.example.
    mta   A  203.0.113.25
roles:
  - role: smtp-feed
    host: feed.provider.example
    client_domains: client.example
    routes: {client.example: "[mail.client.example]"}
    greylisting: {enabled: false}
  - role: customer-server
    host: mail.client.example
    local_domains: client.example
    valid_recipients: [ann@client.example]
traffic:
  - {kind: sender, host: mta.sender.example, rate: 4/h, stop: STOP, from: sue@sender.example,
     to: ann@client.example}
  READER
operations:
OPERATIONS
expectations:
  - guarantee: feed-queue-2d
    params: {feed: feed.provider.example, client: mail.client.example}
  - guarantee: conservation
"""

READER = """- {kind: pop3-reader, host: office.client.example, server: feed.provider.example,
     users: {ann@client.example: pw}, start: 2h, every: 30m}"""


def scenario(operations: str, *, duration="12h", outage="6h", stop="10h", reader=READER):
    text = (WORLD.replace("DURATION", duration).replace("OUTAGE", outage)
            .replace("STOP", stop).replace("READER", reader)
            .replace("OPERATIONS", operations))
    return load_string(text, "ops.yaml")


def problems(operations: str, **kw) -> str:
    with pytest.raises(ScenarioError) as info:
        scenario(operations, **kw)
    return str(info.value)


def test_the_feed_default_retry_keeps_the_seeds_promise():
    """Seed 001: "queued for up to 2 days ... attempts to redeliver will
    constantly be made": no gap over an hour, given up after 2 days."""
    tl = timeline(retry_schedule(FEED_RETRY), attempt_duration=1.0)
    gaps = [b - a for a, b in zip(tl.attempts, tl.attempts[1:])]
    assert max(gaps) <= 35 * 60 and 2 * 86400 <= tl.gave_up_at <= 2 * 86400 + 35 * 60


@pytest.mark.parametrize("ops, expected", [
    ("  - {at: 2h, extend-queue: {client: other.example, lifetime: 4d}}",
     "operations[0].extend-queue.client: expected a client domain of an smtp-feed role "
     "(client.example), got 'other.example'"),
    ("  - {at: 13h, extend-queue: {client: client.example, lifetime: 4d}}",
     "operations[0].at: expected a time within the run (from 0 to before 12h), got 13h"),
    ("  - {at: 2h, switch-to-feed: {client: client.example}}",
     "client.example is on the SMTP feed at 2h (nothing to switch back from)"),
    ("  - {at: 2h, switch-to-pop3: {client: client.example, users: {ann@client.example: p}}}\n"
     "  - {at: 3h, switch-to-pop3: {client: client.example, users: {ann@client.example: p}}}",
     "client.example is on POP3 mailboxes already at 3h"),
    ("  - {at: 2h, extend-queue: {client: client.example, lifetime: 4d, feed: nowhere.example}}",
     "expected the name of a host in hosts"),
    ("  - {at: 2h, extend-queue: {client: client.example, lifetime: 1d}}",
     "operations[0].extend-queue.lifetime: expected a lifetime longer than the 2d "
     "client.example has at 2h, got 1d"),
    ("  - {at: 2h}", "expected exactly one of extend-queue, switch-to-pop3, switch-to-feed"),
    ("  - {at: 2h, extend-queue: {client: client.example, lifetime: 0}}",
     "expected a lifetime above zero"),
])
def test_bad_operations_fail_validation_naming_the_key(ops, expected):
    assert expected in problems(ops)


def test_mxsim_run_exits_2_on_a_bad_operation(tmp_path):
    import subprocess
    import sys
    path = tmp_path / "bad.yaml"
    path.write_text(scenario_text("  - {at: 2h, extend-queue: {client: x.example, lifetime: 4d}}"))
    done = subprocess.run([sys.executable, "-m", "sim.cli", "run", str(path),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert done.returncode == 2 and "extend-queue.client" in done.stderr + done.stdout


def scenario_text(operations: str) -> str:
    return (WORLD.replace("DURATION", "12h").replace("OUTAGE", "6h").replace("STOP", "10h")
            .replace("READER", READER).replace("OPERATIONS", operations))


def test_extend_queue_is_an_event_and_counts_for_queued_mail():
    """Two extensions: each is on the record with the lifetime it replaced,
    and feed-queue-2d judges with the one in force."""
    ops = ("  - {at: 30m, extend-queue: {client: client.example, lifetime: 3d}}\n"
           "  - {at: 2h, extend-queue: {client: client.example, lifetime: 4d}}")
    res = run_scenario(scenario(ops, reader=""), write=False)
    sets = [e for e in res.events if isinstance(e, ev.QueueLifetimeSet)]
    assert [(e.t, e.lifetime, e.previous) for e in sets] == [
        (1800.0, 259200.0, 172800.0), (7200.0, 345600.0, 259200.0)]
    q2d = next(g for g in res.verdict.guarantees if g.id == "feed-queue-2d")
    assert q2d.status == "pass", q2d.detail


def test_switch_to_pop3_and_back():
    """Switched at 2h (the client down since 1h), back at 8h (up since 7h):
    the queued mail goes into the mailboxes at once, the reader fetches it,
    nothing is tried at the client's server meanwhile, and after the switch
    back mail is relayed again; every copy delivered exactly once."""
    ops = ("  - {at: 2h, switch-to-pop3: {client: client.example,"
           " users: {ann@client.example: pw}}}\n"
           "  - {at: 8h, switch-to-feed: {client: client.example}}")
    res = run_scenario(scenario(ops), write=False)
    modes = [(e.t, e.mode) for e in res.events if isinstance(e, ev.DeliveryModeSet)]
    assert modes == [(2 * H, "mailboxes"), (8 * H, "feed")]
    filed = [e for e in res.events if isinstance(e, ev.DeliveredToMailbox) and e.host == FEED]
    assert filed and all(2 * H <= e.t < 8 * H for e in filed)
    assert any(e.t == 2 * H for e in filed)           # what waited for the server, at once
    tried = [e for e in res.events if isinstance(e, ev.AttemptStarted) and e.host == FEED]
    assert not [e for e in tried if 2 * H <= e.t < 8 * H]
    assert [e for e in tried if e.t >= 8 * H]         # relayed again afterwards
    read = {(e.trace, e.mailbox) for e in res.events if isinstance(e, MailRetrieved)}
    assert {(e.trace, e.rcpt) for e in filed} == read
    by_id = {g.id: g for g in res.verdict.guarantees}
    assert by_id["conservation"].status == "pass" and by_id["feed-queue-2d"].status == "pass"
    assert res.verdict.counts.duplicates == 0


def test_a_feed_that_relays_while_switched_fails_feed_queue_2d():
    """Planted: an attempt at the client's server inside the switched
    period is named by feed-queue-2d."""
    from sim.evidence.checks import run_check
    ops = ("  - {at: 2h, switch-to-pop3: {client: client.example,"
           " users: {ann@client.example: pw}}}\n"
           "  - {at: 8h, switch-to-feed: {client: client.example}}")
    res = run_scenario(scenario(ops), write=False)
    params = {"feed": FEED, "client": CLIENT}
    filed = next(e for e in res.events if isinstance(e, ev.DeliveredToMailbox) and e.host == FEED)
    planted = ev.AttemptStarted(t=filed.t, host=FEED, msg=filed.msg, trace=filed.trace,
                                rcpts=(filed.rcpt,), dest_host=CLIENT, dest_ip="198.51.100.20")
    events = list(res.events)
    events.insert(events.index(filed), planted)
    r = run_check("feed-queue-2d", events, params)
    assert r.status == "fail" and "while the domain was switched to POP3" in \
        r.counterexamples[0]["why"]
    early = [e for e in res.events if not isinstance(e, ev.DeliveryModeSet) or e.mode != "mailboxes"]
    r = run_check("feed-queue-2d", early, params)
    assert r.status == "fail" and "while the domain was on the SMTP feed" in \
        r.counterexamples[0]["why"]
