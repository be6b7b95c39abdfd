"""Envelope address parsing, including nmap's 16 smtp-open-relay forms."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mta.addresses import (Address, AddressError, domain_matches, is_fqdn, literal_ip,
                           nmap_relay_probes,
                           parse_esmtp_params, parse_mailbox, parse_path, parse_size_param,
                           split_path, valid_domain)

DOMAIN = "nmap.scanme.org"
SRV = "mx.example.net"
IP = "192.0.2.10"


def nmap_pairs(domain: str = DOMAIN, srv: str = SRV, ip: str = IP) -> list[tuple[str, str]]:
    return nmap_relay_probes(srv, ip, domain)


def test_probe_list_matches_nmap_script_text() -> None:
    # Spot checks against the forms quoted from smtp-open-relay.nse.
    p = nmap_pairs()
    assert p[0] == ("<>", "<relaytest@nmap.scanme.org>")
    assert p[6][1] == '<"relaytest@nmap.scanme.org">'
    assert p[11][1] == "<@[192.0.2.10]:relaytest@nmap.scanme.org>"
    assert p[15] == ("<antispam@[192.0.2.10]>", "<nmap.scanme.org!relaytest@mx.example.net>")


def test_sixteen_forms_parse_and_each_either_routes_or_leaves_for_domain() -> None:
    pairs = nmap_pairs()
    assert len(pairs) == 16 and len(set(pairs)) == 16
    for sender, rcpt in pairs:
        parse_path(sender)
        a, params = parse_path(rcpt)
        assert params == ""
        # Every probe either names the foreign domain directly or carries a
        # routing character in its local part: never a plain local address.
        assert a.routed or a.domain == DOMAIN, rcpt


@pytest.mark.parametrize("text,local,domain,routed,route", [
    ("<relaytest%nmap.scanme.org@[192.0.2.10]>", "relaytest%nmap.scanme.org", "[192.0.2.10]", True, ()),
    ('<"relaytest@nmap.scanme.org">', "relaytest@nmap.scanme.org", "", True, ()),
    ('<"relaytest@nmap.scanme.org"@[192.0.2.10]>', "relaytest@nmap.scanme.org", "[192.0.2.10]", True, ()),
    ("<relaytest@nmap.scanme.org@mx.example.net>", "relaytest@nmap.scanme.org", "mx.example.net", True, ()),
    ("<@[192.0.2.10]:relaytest@nmap.scanme.org>", "relaytest", "nmap.scanme.org", False, ("[192.0.2.10]",)),
    ("<@a.example,@b.example:u@c.example>", "u", "c.example", False, ("a.example", "b.example")),
    ("<nmap.scanme.org!relaytest>", "nmap.scanme.org!relaytest", "", True, ()),
    ("<User@Example.NET>", "User", "example.net", False, ()),
    ("bare@example.net", "bare", "example.net", False, ()),
])
def test_forms(text: str, local: str, domain: str, routed: bool, route: tuple) -> None:
    a, _ = parse_path(text)
    assert (a.local, a.domain, a.routed, a.route) == (local, domain, routed, route)


def test_null_path_and_mailbox_rendering() -> None:
    a, params = parse_path("<> SIZE=10")
    assert a.is_null and a.mailbox == "" and params == "SIZE=10"
    q, _ = parse_path('<"john doe"@example.net>')
    assert q.mailbox == '"john doe"@example.net'
    assert parse_mailbox('"a@b"@c.example').mailbox == '"a@b"@c.example'


@pytest.mark.parametrize("bad", [
    "<a@b.example", "<@a.example>", "<a@>", "<a@b..c>", "<a@-b.example>", '<"unterminated@b>',
    "<a\x00b@c.example>", "<a b@c.example>", "<a@b.example:x>", "<a@[300.1.1.1]>",
    "<" + "x" * 65 + "@example.net>", "<a@" + "x" * 300 + ".example>",
])
def test_bad_addresses_raise_address_error(bad: str) -> None:
    with pytest.raises(AddressError) as info:
        parse_path(bad)
    assert info.value.code in (501, 553)
    assert info.value.enhanced.startswith("5.")


def test_domain_helpers() -> None:
    assert valid_domain("a-b.example") and not valid_domain("a_b.example")
    assert literal_ip("[192.0.2.1]") == "192.0.2.1"
    assert literal_ip("[IPv6:2001:db8::1]") == "2001:db8::1"
    assert literal_ip("example.net") is None
    assert is_fqdn("mail.example.net") and is_fqdn("[192.0.2.1]")
    assert not is_fqdn("localhost") and not is_fqdn("mail") and not is_fqdn("1.2.3.4")
    assert domain_matches("a.b.example", (".b.example",))
    assert not domain_matches("b.example", (".b.example",))
    assert domain_matches("B.Example", ("b.example",))


def test_esmtp_params_and_size() -> None:
    assert parse_esmtp_params("size=100 BODY=8BITMIME") == {"SIZE": "100", "BODY": "8BITMIME"}
    assert parse_esmtp_params("SMTPUTF8") == {"SMTPUTF8": True}
    for bad in ("SIZE=", "=1", "SI_ZE=1"):
        with pytest.raises(AddressError):
            parse_esmtp_params(bad)
    assert parse_size_param("123") == 123
    for bad in ("", "-1", "1e3", True, "9" * 30):
        with pytest.raises(AddressError):
            parse_size_param(bad)


# -- properties ---------------------------------------------------------------

label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,5}[a-z0-9])?", fullmatch=True)
domains = st.lists(label, min_size=2, max_size=3).map(".".join)
atoms = st.from_regex(r"[A-Za-z0-9#$&'*+/=?^_`{|}~-]{1,8}", fullmatch=True)
locals_ = st.lists(atoms, min_size=1, max_size=2).map(".".join)


@given(locals_, domains)
def test_roundtrip_plain(local: str, domain: str) -> None:
    a, params = parse_path(f"<{local}@{domain}>")
    assert a == Address(local, domain)
    assert a.mailbox == f"{local}@{domain}"
    assert parse_path(f"<{a.mailbox}>")[0] == a


@given(locals_, domains, domains)
def test_any_routing_character_marks_routed(local: str, dom: str, dom2: str) -> None:
    for probe in (f"<{local}%{dom}@{dom2}>", f"<{dom}!{local}@{dom2}>",
                  f"<{local}@{dom}@{dom2}>", f'<"{local}@{dom}">', f'<"{local}@{dom}"@{dom2}>'):
        a, _ = parse_path(probe)
        assert a.routed
        # The mailbox form keeps the routing inside the local part.
        assert parse_path(f"<{a.mailbox}>")[0].routed


@given(locals_, domains, st.lists(domains, min_size=1, max_size=3))
def test_source_routes_are_dropped(local: str, domain: str, hops: list[str]) -> None:
    route = ",".join("@" + h for h in hops)
    a, _ = parse_path(f"<{route}:{local}@{domain}>")
    assert a.route == tuple(hops) and a.mailbox == f"{local}@{domain}" and not a.routed


@settings(max_examples=300)
@given(st.text(max_size=80))
def test_parser_never_fails_unexpectedly(text: str) -> None:
    try:
        a, params = parse_path(text)
    except AddressError as exc:
        assert exc.code in (501, 553)
        return
    assert isinstance(a, Address)
    assert isinstance(params, str)


@given(st.integers(min_value=0, max_value=10**15))
def test_size_param_roundtrip(n: int) -> None:
    assert parse_size_param(str(n)) == n
    assert parse_esmtp_params(f"SIZE={n}")["SIZE"] == str(n)


def test_split_path_keeps_params_after_quoted_gt() -> None:
    assert split_path('<"a>b"@c.example> SIZE=5') == ('"a>b"@c.example', "SIZE=5")
