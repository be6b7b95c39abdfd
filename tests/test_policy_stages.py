"""Policy stages as plain functions: no server, no I/O."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mta.addresses import parse_path
from mta.policy import (Action, ClientBlockList, ConnectAllowList, Decision, Facts,
                        HeloFqdnStage, Networks, Note, Phase, PolicyChain, PolicyError,
                        RecipientLimit, RelayControl, SizeLimit, Stage)
from mta.addresses import NMAP_DOMAIN as DOMAIN, nmap_relay_probes

SRV, IP = "mx.example.net", "192.0.2.10"


def nmap_pairs():
    return nmap_relay_probes(SRV, IP)


def rcpt(text: str):
    return parse_path(text)[0]


def facts(ip: str = "203.0.113.9", **kw) -> Facts:
    return Facts(client_ip=ip, **kw)


# -- decisions ---------------------------------------------------------------

def test_decision_validates_codes() -> None:
    assert Decision.reject("s", 554, "5.7.1", "no").reply == "554 5.7.1 no"
    with pytest.raises(PolicyError):
        Decision.reject("s", 451, "4.7.1", "mismatch")
    with pytest.raises(PolicyError):
        Decision.defer("s", 452, "5.5.3", "class mismatch")
    with pytest.raises(PolicyError):
        Decision.reject("s", 550, "5.1.1", "")
    with pytest.raises(PolicyError):
        Decision.reject("s", 550, "5.1", "bad enhanced")


# -- relay control -------------------------------------------------------------

BACKUP = RelayControl(relay_domains=("example.com", "sub.example.com"),
                      relay_recipients=frozenset({"alice@example.com", "@sub.example.com"}),
                      trusted=Networks(["192.168.1.0/24"]))


@pytest.mark.parametrize("stage", [
    RelayControl(local_domains=(SRV, "example.net")),
    BACKUP,
    RelayControl(trusted=Networks(["10.0.0.0/8"]), allow_authenticated=True),
])
def test_all_sixteen_nmap_probes_refused_for_a_stranger(stage: RelayControl) -> None:
    f = facts()
    for _sender, rc in nmap_pairs():
        d = stage.on_rcpt(f, rcpt(rc))
        assert d is not None and d.action is Action.REJECT, rc
        assert d.code in (550, 554, 504), rc
        assert d.enhanced.startswith("5."), rc


def test_relay_denied_text_is_postfix() -> None:
    d = BACKUP.on_rcpt(facts(), rcpt("<x@elsewhere.org>"))
    assert d.reply == "554 5.7.1 <x@elsewhere.org>: Relay access denied"


def test_relay_recipient_table() -> None:
    f = facts()
    assert not BACKUP.on_rcpt(f, rcpt("<alice@example.com>")).refused
    assert not BACKUP.on_rcpt(f, rcpt("<anyone@sub.example.com>")).refused
    d = BACKUP.on_rcpt(f, rcpt("<bob@example.com>"))
    assert d.reply == ("550 5.1.1 <bob@example.com>: Recipient address rejected: "
                       "User unknown in relay recipient table")


def test_routed_address_to_relay_domain_is_still_a_relay_attempt() -> None:
    d = BACKUP.on_rcpt(facts(), rcpt("<alice%elsewhere.org@example.com>"))
    assert d.code == 554 and "Relay access denied" in d.text


def test_trusted_and_authenticated_clients_may_relay() -> None:
    assert BACKUP.on_rcpt(facts("192.168.1.7"), rcpt("<x@elsewhere.org>")).tags == ("relay", "trusted-network")
    auth = RelayControl(allow_authenticated=True)
    assert auth.on_rcpt(facts(), rcpt("<x@elsewhere.org>")).refused
    assert not auth.on_rcpt(facts(authenticated=True), rcpt("<x@elsewhere.org>")).refused
    granted = facts()
    granted.grants.add("relay")
    assert not auth.on_rcpt(granted, rcpt("<x@elsewhere.org>")).refused


def test_untrusted_inside_trusted_is_refused() -> None:
    isp = RelayControl(trusted=Networks(["198.51.100.0/24"]),
                       untrusted=Networks(["198.51.100.25"]))
    assert not isp.on_rcpt(facts("198.51.100.24"), rcpt("<x@elsewhere.org>")).refused
    assert isp.on_rcpt(facts("198.51.100.25"), rcpt("<x@elsewhere.org>")).code == 554


def test_local_recipients_and_unqualified() -> None:
    local = RelayControl(local_domains=("example.net",),
                         local_recipients=frozenset({"bob@example.net"}))
    assert not local.on_rcpt(facts(), rcpt("<Bob@Example.NET>")).refused
    assert "local recipient table" in local.on_rcpt(facts(), rcpt("<eve@example.net>")).text
    assert not local.on_rcpt(facts(), rcpt("<postmaster>")).refused
    d = local.on_rcpt(facts(), rcpt("<bob>"))
    assert d.code == 504 and d.enhanced == "5.5.2"


@given(st.sampled_from(["%", "!", "@"]), st.sampled_from(["example.net", "[192.0.2.10]", DOMAIN]))
def test_any_routed_local_part_refused(char: str, domain: str) -> None:
    stage = RelayControl(local_domains=("example.net",))
    local = f"user{char}other.org" if char != "!" else f"other.org!user"
    text = f'<"{local}"@{domain}>' if char == "@" else f"<{local}@{domain}>"
    assert stage.on_rcpt(facts(), rcpt(text)).code == 554


# -- access lists ----------------------------------------------------------------

def test_lockdown_allows_feed_lan_and_loopback_only() -> None:
    stage = ConnectAllowList(Networks(["198.51.100.7", "192.168.0.0/16"]))
    for ok in ("198.51.100.7", "192.168.3.4", "127.0.0.1", "::1"):
        assert stage.on_connect(facts(ok)) is None, ok
    d = stage.on_connect(facts("203.0.113.9"))
    assert d.reply == "554 5.7.1 <[203.0.113.9]>: Client host rejected: Access denied"


def test_blocklist_phase() -> None:
    blocked = Networks(["203.0.113.0/24"])
    at_rcpt = ClientBlockList(blocked)
    assert at_rcpt.on_connect(facts()) is None
    assert at_rcpt.on_rcpt(facts(), rcpt("<a@b.example>")).code == 554
    at_connect = ClientBlockList(blocked, phase=Phase.CONNECT)
    assert at_connect.on_connect(facts()).code == 554
    assert at_connect.on_connect(facts("192.0.2.1")) is None
    with pytest.raises(ValueError):
        ClientBlockList(blocked, phase=Phase.DATA)


# -- HELO, size, recipients --------------------------------------------------------

def test_helo_fqdn() -> None:
    s = HeloFqdnStage()
    assert s.on_helo(facts(), "mail.customer.example") is None
    assert s.on_helo(facts(), "[192.0.2.1]") is None
    d = s.on_helo(facts(), "mailhost")
    assert d.reply == "504 5.5.2 <mailhost>: Helo command rejected: need fully-qualified hostname"


def test_size_limit() -> None:
    s = SizeLimit(100_000)
    assert s.ehlo_keywords() == ["SIZE 100000"]
    assert s.on_mail(facts(declared_size=100_000), None) is None
    assert s.on_mail(facts(declared_size=100_001), None).reply == \
        "552 5.3.4 Message size exceeds fixed limit"
    assert s.on_data(facts(data_overflow=True), b"").code == 552
    with pytest.raises(ValueError):
        SizeLimit(1000)


@pytest.mark.parametrize("mode", ["conformant", "documented"])
def test_recipient_limit_modes(mode: str) -> None:
    s = RecipientLimit(3, mode)
    f = facts(rcpts=["a@x.example", "b@x.example"])
    assert s.on_rcpt(f, rcpt("<c@x.example>")) is None
    f.rcpts.append("c@x.example")
    d = s.on_rcpt(f, rcpt("<d@x.example>"))
    if mode == "conformant":
        assert d.reply == "452 4.5.3 Error: too many recipients"
    else:
        assert d.action is Action.ACCEPT and d.keep is False
        assert d.notes == (Note("dropped-over-limit", "d@x.example"),)


# -- the chain -----------------------------------------------------------------------

class Tagger(Stage):
    name = "tagger"

    def on_rcpt(self, facts, rcpt):
        return Decision.accept(self.name, headers=(("X-Seen", "yes"),), tags=("seen",),
                               notes=(Note("saw", rcpt.mailbox),), grants=("relay",))


def test_chain_pools_acceptances_and_stops_at_first_refusal() -> None:
    chain = PolicyChain([Tagger(), RelayControl(), RecipientLimit(1)])
    f = facts()
    out = chain.decide(Phase.RCPT, f, rcpt("<x@elsewhere.org>"))
    # Tagger granted relay, so relay control (after it) lets the stranger relay.
    assert not out.refused and out.stage == "relay"
    assert out.headers == (("X-Seen", "yes"),) and "seen" in out.tags
    assert out.notes == (("tagger", Note("saw", "x@elsewhere.org")),
                         ("relay", Note("relay-permitted", "granted x@elsewhere.org")))
    f.rcpts.append("x@elsewhere.org")
    out = chain.decide(Phase.RCPT, f, rcpt("<y@elsewhere.org>"))
    assert out.refused and out.stage == "recipient_limit" and out.decision.code == 452


def test_chain_without_opinion_accepts() -> None:
    out = PolicyChain([]).decide(Phase.MAIL, facts(), rcpt("<a@b.example>"))
    assert not out.refused and out.stage == "" and out.keep


def test_chain_keywords_and_size() -> None:
    chain = PolicyChain([SizeLimit(200_000), SizeLimit(100_000), RelayControl()])
    assert chain.max_message_size == 100_000
    assert chain.ehlo_keywords() == ["SIZE 200000", "SIZE 100000"]


def test_networks_answer_the_same_each_time_and_ip_literals_are_recognised():
    from mta.delivery.routing import is_ip
    from mta.policy.access import Networks
    nets = Networks(["192.0.2.0/24", "2001:db8::/32"])
    for _ in range(2):                # the second answer comes from memory
        assert "192.0.2.7" in nets and "2001:db8::1" in nets
        assert "198.51.100.1" not in nets and "not-an-ip" not in nets
    for text, literal in [("192.0.2.1", True), ("[192.0.2.1]", True), ("::1", True),
                          ("fe80::1%eth0", True), ("dead:beef::1", True),
                          ("mx.example", False), ("abc.def", False), ("", False)]:
        assert is_ip(text) is literal, text


def test_the_chain_asks_only_stages_with_a_hook_and_follows_a_replaced_list():
    from mta.policy import Phase, PolicyChain, Stage

    class Refuse(Stage):
        name = "refuse-mail"

        def on_mail(self, facts, sender):
            return Decision.reject(self.name, 550, "5.7.1", "no")

    class Quiet(Stage):
        def on_rcpt(self, facts, rcpt):
            raise AssertionError("asked outside its phase")

    chain = PolicyChain([Quiet(), Refuse()])
    facts = Facts(client_ip="192.0.2.1")
    assert chain.decide(Phase.MAIL, facts, None).stage == "refuse-mail"
    assert not chain.decide(Phase.HELO, facts, "x.example").refused
    chain.stages = [Quiet()]          # what a restricted relay does to its chain
    assert not chain.decide(Phase.MAIL, facts, None).refused
