"""The smtp-feed role wired into a simulated run: greylisting in the SMTP
dialogue (memory store per feed host), the filter chain after queueing."""
from __future__ import annotations

import pytest

from mta import events as ev
from sim import convert
from sim.pipeline import run_scenario
from sim.scenario.loader import ScenarioError
from sim.pipeline import load_string as load_text

FEED = """
name: feed-wiring
seed: 3
duration: 6h
hosts:
  - {name: feed.provider.example, address: 192.0.2.80}
  - {name: mail.client.example, address: 198.51.100.20}
  - {name: mta.sender.example, address: 203.0.113.25}
  - {name: bot.spam.example, address: 198.18.0.66}
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
    GREY
  - role: customer-server
    host: mail.client.example
    local_domains: client.example
    valid_recipients: [ann@client.example, art@client.example]
traffic:
  - {kind: sender, host: mta.sender.example, rate: 2/h, stop: 4h, from: sue@sender.example,
     to: [ann@client.example, art@client.example]}
  - {kind: spammer, host: bot.spam.example, rate: 4/h, stop: 4h, from: "deals{n}@cheap.example",
     to: [ann@client.example], target: mx}     # a fresh sender for every message
expectations:
  - guarantee: conservation
"""


def run(grey: str = "greylisting: {}"):
    return run_scenario(load_text(FEED.replace("GREY", grey), "feed.yaml"), write=False)


def replies(result, host="feed.provider.example"):
    return [e for e in result.events if isinstance(e, ev.SmtpReply) and e.host == host
            and e.command == "RCPT"]


@pytest.fixture(scope="module")
def grey_run():
    return run()


def test_spammers_never_get_through_greylisting(grey_run):
    spam = [r for r in replies(grey_run) if r.client_ip == "198.18.0.66"]
    assert spam and all(r.code == 450 and r.text.startswith("4.2.0 ") for r in spam)
    accepted = [e for e in grey_run.events if isinstance(e, ev.MessageAccepted)
                and e.mail_from.endswith("@cheap.example")]
    assert len(spam) > 10 and accepted == []


def test_a_spam_run_that_repeats_its_triplet_passes_after_the_delay():
    # postgrey's semantics, not a leak: the same (network, sender, recipient)
    # seen again after the delay is a retry as far as greylisting can tell.
    result = run_scenario(load_text(FEED.replace("GREY", "greylisting: {}").replace(
        '"deals{n}@cheap.example"', "deals@cheap.example"), "feed.yaml"), write=False)
    spam = [r for r in replies(result) if r.client_ip == "198.18.0.66"]
    assert spam[0].code == 450
    passed = [r for r in spam if r.code == 250]
    assert passed and passed[0].t - spam[0].t >= 300


def test_senders_get_through_on_their_first_retry_after_the_delay(grey_run):
    legit = [r for r in replies(grey_run) if r.client_ip == "203.0.113.25"]
    first = {}
    for r in legit:
        rcpt = r.argument.split("<")[1].rstrip(">")
        first.setdefault(rcpt, []).append(r)
    for rcpt, rs in first.items():
        assert rs[0].code == 450                     # an unknown triplet is deferred
        assert rs[1].code == 250                     # the first retry passes ...
        assert rs[1].t - rs[0].t >= 300              # ... after the 300 s delay (Postfix)
    assert sorted(first) == ["ann@client.example", "art@client.example"]


def test_accepted_mail_is_virus_scanned_before_delivery(grey_run):
    accepted = {e.msg for e in grey_run.events if isinstance(e, ev.MessageAccepted)
                and e.host == "feed.provider.example"}
    scanned = {e.msg for e in grey_run.events if isinstance(e, ev.FilterVerdict)
               and e.stage == "virus" and e.outcome == "clean"}
    assert accepted and accepted == scanned
    assert grey_run.met


def test_greylisting_settings_map_to_postgrey_config():
    from mta.policy.greylist import GreylistConfig
    sc = load_text(FEED.replace("GREY", "greylisting: {delay: 10m, retry_window: 1d, "
                                        "auto_whitelist_clients: 0}"), "feed.yaml")
    cfg = convert.role_config(sc.roles[0]).greylisting
    assert isinstance(cfg, GreylistConfig)
    assert (cfg.delay, cfg.retry_window, cfg.auto_whitelist_clients, cfg.max_age) == (
        600, 86400, 0, 35 * 86400)
    off = load_text(FEED.replace("GREY", "greylisting: {enabled: false}"), "feed.yaml")
    assert convert.role_config(off.roles[0]).greylisting is None


def test_without_greylisting_the_spammer_is_accepted_and_scanned():
    result = run("greylisting: null")
    assert all(r.code == 250 for r in replies(result))
    assert any(isinstance(e, ev.MessageAccepted) and e.mail_from.endswith("@cheap.example")
               for e in result.events)


def test_live_only_scanners_are_refused_in_the_simulation():
    with pytest.raises(ScenarioError, match="clamd cannot be reached from the simulated loop"):
        load_text(FEED.replace("GREY", "virus_scanner: clamd"), "feed.yaml")
    with pytest.raises(ScenarioError, match="spamd cannot be reached"):
        load_text(FEED.replace("GREY", "spam: {enabled: true, scorer: spamd}"), "feed.yaml")


def test_greylisting_on_a_role_that_does_not_run_it_is_refused():
    text = FEED.replace("GREY", "greylisting: {}").replace(
        "    valid_recipients: [ann@client.example, art@client.example]",
        "    valid_recipients: [ann@client.example, art@client.example]\n    greylisting: {}")
    with pytest.raises(ScenarioError, match=r"roles\[1\]\.greylisting: .*customer-server.*"
                                            r"does not run yet"):
        load_text(text, "feed.yaml")
