"""Greylisting decisions (mta.policy.greylist): hand-computed timelines
against postgrey's rules, then properties over arbitrary timelines.

Every expectation below is worked out from postgrey 1.37's
``smtpd_access_policy`` (the retry exactly 300 s later passes: the test is
``delay - (now - first) > 0``); the slow test
``test_greylist_postgrey.py`` replays random timelines against the real
daemon.
"""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from mta.addresses import Address
from mta.policy import Facts, PolicyChain
from mta.policy.decision import Action, Phase
from mta.policy.greylist import (GreylistConfig, GreylistStage, client_network, decide,
                                 normalise_sender, query_for)
from mta.policy.greylist_store import MemoryGreylistStore, SqliteGreylistStore

DAY = 86400
IP = "192.0.2.7"
ALICE, BOB = "alice@sender.example", "bob@example.net"


class Greylist:
    """decide() against a memory store, the way the stage uses it."""

    def __init__(self, **cfg) -> None:
        self.cfg = GreylistConfig(**cfg)
        self.store = MemoryGreylistStore()

    def __call__(self, t: float, ip: str = IP, sender: str = ALICE, rcpt: str = BOB):
        q = query_for(self.cfg, ip, sender, rcpt, t)
        v = decide(self.cfg, q, self.store.triplet(q.key), self.store.client(q.client),
                   hostname="mx.example.net")
        self.store.apply(v.update)
        return v

    def passes(self, t: float, **kw) -> bool:
        return not self(t, **kw).decision.refused


# -- the reply ---------------------------------------------------------------

def test_first_attempt_is_deferred_with_postgreys_text_as_postfix_sends_it():
    v = Greylist()(1000)
    d = v.decision
    assert (d.action, d.code, d.enhanced) == (Action.DEFER, 450, "4.2.0")
    assert d.reply == ("450 4.2.0 <bob@example.net>: Recipient address rejected: Greylisted, "
                       "see http://postgrey.schweikert.ch/help/example.net.html")
    assert (v.action, v.reason, v.remaining) == ("greylist", "new", 300)
    assert d.notes[0].decision == "greylist"
    assert d.notes[0].detail == ("reason=new remaining=300 "
                                 "triplet=192.0.2.0/alice@sender.example/bob@example.net")


def test_greylist_text_substitutes_seconds_and_domain_once():
    g = Greylist(greylist_text="wait %s s for %r (%s)")
    g(0)
    d = g(100).decision
    assert d.text.endswith("Recipient address rejected: wait 200 s for example.net (%s)")
    assert d.enhanced == "4.2.0"
    own = Greylist(greylist_text="4.7.1 come back later")(0).decision
    assert (own.enhanced, own.text) == ("4.7.1", "<bob@example.net>: Recipient address "
                                                 "rejected: come back later")
    with pytest.raises(ValueError, match="4.x.x"):
        GreylistConfig(greylist_text="5.7.1 go away")


# -- hand-computed timelines -------------------------------------------------

def test_retry_at_299_is_deferred_at_300_passes_with_one_header():
    g = Greylist()
    assert not g.passes(1000)
    v = g(1299)
    assert (v.reason, v.remaining) == ("early-retry", 1) and v.decision.refused
    v = g(1300)
    assert not v.decision.refused and (v.reason, v.waited) == ("triplet found", 300)
    assert v.decision.headers == (("X-Greylist", "delayed 300 seconds by mxsim-greylist at "
                                   "mx.example.net; Thu, 01 Jan 1970 00:21:40 UTC"),)
    later = g(5000)
    assert not later.decision.refused and later.waited is None and not later.decision.headers


def test_time_is_whole_seconds_like_perls_time():
    g = Greylist()
    g(10.9)                          # first = 10
    assert not g.passes(309.99)      # 309 - 10 = 299
    assert g.passes(310.0)


def test_retry_within_two_days_passes_after_starts_over():
    g = Greylist()
    g(0)
    assert g.passes(2 * DAY)                 # now - first == window: not "> window"
    h = Greylist()
    h(0)
    v = h(2 * DAY + 1)                       # too late: a new first-seen
    assert v.decision.refused and (v.reason, v.remaining) == ("new", 300)
    assert not h.passes(2 * DAY + 300)
    assert h.passes(2 * DAY + 301)


def test_early_retries_keep_the_first_seen_time():
    g = Greylist()
    for t in (0, 60, 120, 240):
        assert not g.passes(t)
    assert g.store.triplets["192.0.2.0/alice@sender.example/bob@example.net"].first == 0
    assert g.passes(300)


def test_a_new_recipient_is_a_new_triplet():
    g = Greylist()
    g(0)
    assert g.passes(300)
    v = g(301, rcpt="carol@example.net")
    assert v.decision.refused and v.reason == "new"
    assert g.passes(301)                     # bob's triplet is unaffected


def test_ipv4_clients_are_grouped_by_24():
    g = Greylist()
    g(0, ip="192.0.2.7")
    assert g.passes(300, ip="192.0.2.250")   # another address of the same pool
    assert not g.passes(300, ip="192.0.3.7")
    by_host = Greylist(lookup_by_host=True)
    by_host(0, ip="192.0.2.7")
    assert not by_host.passes(300, ip="192.0.2.250")
    assert by_host.passes(300, ip="192.0.2.7")
    assert client_network(by_host.cfg, "192.0.2.7") == "192.0.2.7/32"


def test_ipv6_clients_are_grouped_by_64():
    g = Greylist()
    g(0, ip="2001:db8:1:2::5")
    assert g.passes(300, ip="2001:db8:1:2:ffff:ffff:ffff:1")
    assert not g.passes(300, ip="2001:db8:1:3::5")
    assert client_network(g.cfg, "2001:db8:1:2:aaaa::1") == "2001:db8:1:2::"
    assert client_network(GreylistConfig(ipv4_cidr=16), "192.0.2.7") == "192.0.0.0"


def test_sender_normalisation_is_postgreys():
    assert normalise_sender("list+bounce-1234@lists.example") == "list@lists.example"
    assert normalise_sender("news-2024-05@x.example") == "news-#-#@x.example"
    assert normalise_sender("user42@x.example") == "user42@x.example"   # not a word of its own
    assert normalise_sender("prvs=1234567890=alice@x.example") == "alice@x.example"
    assert normalise_sender("prvs=alice=1234567890@x.example") == "alice@x.example"
    assert normalise_sender("") == "" and normalise_sender("postmaster") == "postmaster"
    g = Greylist()
    g(0, sender="prvs=0123456789=Alice+a@Sender.Example")
    assert g.passes(300, sender="prvs=9876543210=alice+b@sender.example")
    raw = Greylist(normalise_sender=False)
    raw(0, sender="alice+a@sender.example")
    assert not raw.passes(300, sender="alice+b@sender.example")


def test_null_sender_is_greylisted_too():
    g = Greylist()
    v = g(0, sender="")
    assert v.decision.refused and v.key == "192.0.2.0//bob@example.net"
    assert g.passes(300, sender="")


def test_five_first_passes_an_hour_apart_whitelist_the_client():
    g = Greylist()
    t = 0
    for n in range(1, 6):                    # five triplets, each greylisted, then passing
        rcpt = f"u{n}@example.net"
        assert not g.passes(t, rcpt=rcpt)
        v = g(t + 300, rcpt=rcpt)
        assert not v.decision.refused and v.awl_count == n
        t += 3600
    v = g(t, rcpt="new@example.net")         # never seen, passes at once
    assert not v.decision.refused and v.reason == "client AWL"
    assert "192.0.2.0/alice@sender.example/new@example.net" not in g.store.triplets
    # the whitelist is per address, not per /24
    assert g(t, ip="192.0.2.8", rcpt="new@example.net").decision.refused


def test_only_one_success_an_hour_counts():
    g = Greylist()
    for n in range(6):                       # six first passes within the same hour
        g(n, rcpt=f"u{n}@example.net")
        g(n + 300, rcpt=f"u{n}@example.net")
    assert g.store.clients[IP].count == 1
    assert g(1000, rcpt="new@example.net").decision.refused


def test_auto_whitelist_can_be_switched_off():
    g = Greylist(auto_whitelist_clients=0)
    for n in range(6):
        g(n * 3600, rcpt=f"u{n}@example.net")
        g(n * 3600 + 300, rcpt=f"u{n}@example.net")
    assert g.store.clients == {} and g(7 * 3600, rcpt="x@example.net").decision.refused


def test_entries_expire_after_35_days_unseen():
    g = Greylist()
    g(0)
    assert g.passes(300)
    assert g.passes(300 + 35 * DAY)          # exactly 35 days unseen: still known
    v = g(300 + 70 * DAY + 1)                # 35 days + 1 s since the last sighting
    assert v.decision.refused and v.reason == "new"


def test_the_clients_whitelist_expires_after_35_days_unseen():
    g = Greylist(auto_whitelist_clients=1)
    g(0)
    g(300)
    assert g(400, rcpt="x@example.net").reason == "client AWL"
    assert g(400 + 35 * DAY + 1, rcpt="y@example.net").decision.refused


def test_static_whitelists():
    g = Greylist(whitelist_clients=("198.51.100.0/24",),
                 whitelist_recipients=("postmaster@", "example.org", "abuse@example.net"))
    assert g(0, ip="198.51.100.9").reason == "client whitelist"
    assert g(0, rcpt="postmaster@anything.example").reason == "recipient whitelist"
    assert g(0, rcpt="x@sub.example.org").reason == "recipient whitelist"
    assert g(0, rcpt="abuse+ext@example.net").reason == "recipient whitelist"
    assert g(0, rcpt="abuse@example.com").decision.refused
    assert g.store.triplets.keys() == {"192.0.2.0/alice@sender.example/abuse@example.com"}
    assert Greylist()(0, rcpt="postmaster@example.net").reason == "recipient whitelist"


def test_a_clock_that_went_back_does_not_keep_clients_waiting_longer():
    g = Greylist()
    g(1000)
    v = g(500)                               # first-seen in the future: corrected to now
    assert v.remaining == 300 and g.store.triplets[v.key].first == 500


def test_bad_configuration_is_refused():
    for bad in (dict(delay=0), dict(delay=1.5), dict(ipv4_cidr=33),
                dict(auto_whitelist_clients=-1), dict(whitelist_clients=("nonsense",)),
                dict(whitelist_recipients=("two words",))):
        with pytest.raises(ValueError):
            GreylistConfig(**bad)


# -- properties --------------------------------------------------------------

triplets = st.tuples(st.sampled_from(["192.0.2.7", "198.51.100.20", "2001:db8::1", "203.0.113.5"]),
                     st.sampled_from(["", "a@x.example", "b+1@y.example", "c@z.example"]),
                     st.sampled_from(["r1@example.net", "r2@example.net", "r3@example.org"]))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 10 * DAY), triplets), max_size=40))
def test_a_sender_that_never_retries_never_passes(attempts):
    """Distinct triplets tried once each, at any times: every one is deferred."""
    g = Greylist()
    seen = set()
    for t, (ip, s, r) in sorted(attempts):
        key = query_for(g.cfg, ip, s, r, t).key
        if key in seen:
            continue
        seen.add(key)
        assert g(t, ip=ip, sender=s, rcpt=r).decision.refused


@settings(max_examples=200, deadline=None)
@given(t0=st.floats(0, 100 * DAY), gap=st.floats(300, 2 * DAY),
       early=st.lists(st.floats(0, 1), max_size=5), trip=triplets)
def test_a_retry_within_delay_and_window_passes(t0, gap, early, trip):
    """First attempt at t0, any early retries, then a retry at t0 + gap with
    gap in [delay, window]: that retry passes."""
    ip, s, r = trip
    g = Greylist()
    assert g(t0, ip=ip, sender=s, rcpt=r).decision.refused
    for f in sorted(early):
        g(t0 + f * 299, ip=ip, sender=s, rcpt=r)
    assert g.passes(t0 + gap, ip=ip, sender=s, rcpt=r)


# -- the stage in a chain ----------------------------------------------------

def facts(ip=IP, sender=ALICE) -> Facts:
    f = Facts(client_ip=ip)
    local, _, domain = sender.partition("@")
    f.mail_from = Address(local, domain)
    return f


def test_stage_reads_and_writes_its_store_and_notes_every_decision():
    now = [100.0]
    store = MemoryGreylistStore()
    chain = PolicyChain([GreylistStage(store=store, clock=lambda: now[0])])
    f = facts()
    out = chain.decide(Phase.RCPT, f, Address("bob", "example.net"))
    assert out.refused and out.stage == "greylist" and out.decision.code == 450
    assert [(s, n.decision) for s, n in out.notes] == [("greylist", "greylist")]
    now[0] = 400.0
    f.new_transaction()
    f.mail_from = Address("alice", "sender.example")
    out = chain.decide(Phase.RCPT, f, Address("bob", "example.net"))
    assert not out.refused and out.headers[0][0] == "X-Greylist"
    assert [n.detail for _, n in out.notes] == [
        "reason=triplet-found remaining=0 delay=300 awl=1 "
        "triplet=192.0.2.0/alice@sender.example/bob@example.net"]
    f.headers.extend(out.headers)            # the session does this; one header per message
    chain.decide(Phase.RCPT, f, Address("carol", "example.net"))   # greylisted
    now[0] = 700.0
    out = chain.decide(Phase.RCPT, f, Address("carol", "example.net"))
    assert not out.refused and out.headers == ()


def test_stage_purges_expired_records_hourly():
    now = [0.0]
    store = MemoryGreylistStore()
    stage = GreylistStage(store=store, clock=lambda: now[0])
    for n in range(3):
        stage.on_rcpt(facts(), Address(f"u{n}", "example.net"))
    assert store.counts() == (3, 0)
    now[0] = 3 * DAY                         # never retried: gone after the window
    d = stage.on_rcpt(facts(), Address("late", "example.net"))
    assert [(n.decision, n.detail) for n in d.notes][0] == ("expired", "triplets=3 clients=0")
    assert store.counts() == (1, 0)


def test_a_failing_store_tempfails_and_says_so(tmp_path):
    store = SqliteGreylistStore(str(tmp_path / "g.db"))
    store._db.execute("DROP TABLE triplets")
    d = GreylistStage(store=store, clock=lambda: 0.0).on_rcpt(facts(), Address("bob", "example.net"))
    assert d.reply == ("451 4.3.5 <bob@example.net>: Recipient address rejected: "
                       "Server configuration problem")
    assert d.notes[0].decision == "store-error" and "OperationalError" in d.notes[0].detail
    store.close()


def test_hostile_input_is_decided_never_crashes(tmp_path):
    store = SqliteGreylistStore(str(tmp_path / "g.db"))
    now = [0.0]
    stage = GreylistStage(store=store, clock=lambda: now[0])
    d = stage.on_rcpt(facts(ip=""), Address("bob", "example.net"))
    assert not d.refused and d.notes[0].detail.startswith("reason=no-client-address")
    odd = Address("x'); DROP TABLE triplets; --", "example.net", quoted=True)
    sender = Facts(client_ip="::ffff:192.0.2.1")
    sender.mail_from = Address("ünï côdé", "sender.example", quoted=True)
    assert stage.on_rcpt(sender, odd).code == 450
    assert store.counts() == (1, 0)
    now[0] = 100.0
    again = stage.on_rcpt(sender, odd)       # the odd key was stored and found again
    assert again.notes[0].detail == ('reason=early-retry remaining=200 triplet='
                                     '::/"ünï côdé"@sender.example/'
                                     '"x\'); drop table triplets; --"@example.net')
    store.close()
