"""Receiving-role configurations: validation, the chains they build, and each
role's own behaviour on real loopback (the 16 nmap relay probes are in
tests/test_server_conformance.py)."""
from __future__ import annotations

import asyncio
import smtplib

import pytest

from helpers.server import NON_RELAYING, run_loopback, run_probe
from mta.policy import (ConnectAllowList, DnsblZone, HeloFqdnStage, RecipientLimit, RelayControl,
                        SizeLimit, Stage)
from mta.roles import (ROLES, BackupMx, CustomerMailServer, IspOutbound, PrimaryMx, QueueingServer,
                       RoleError, SmartHost)


def test_probe_detects_an_open_relay() -> None:
    # The same probe against a smart host that trusts the prober: it relays,
    # so the probe is able to fail.
    open_role = SmartHost(hostname="smtp.isp.example", trusted_networks=("127.0.0.0/8",))
    codes, _, _ = run_probe(open_role)
    # Unqualified forms (7, 8, 14) get 504 "need fully-qualified address"
    # from everyone: this model has no $myorigin to complete them with.
    assert [i + 1 for i, c in enumerate(codes) if c != 250] == [7, 8, 14]
    assert {codes[6], codes[7], codes[13]} == {504}


def test_role_registry_and_chain_order() -> None:
    assert sorted(ROLES) == sorted(NON_RELAYING)
    role = CustomerMailServer(hostname="mail.c.example", local_domains=("c.example",),
                              mailboxes=("a@c.example",), allowlist=("198.51.100.7",),
                              dnsbl=(DnsblZone("zen.example"),), require_fqdn_helo=True)
    names = [s.name for s in role.build_chain().stages]
    assert names == ["allowlist", "dnsbl", "helo_fqdn", "size", "relay", "recipient_limit"]

    class Greylist(Stage):
        name = "greylist"

    extra = PrimaryMx(hostname="mx.example.net", local_domains=("example.net",),
                      after_relay=(Greylist(),))
    assert [s.name for s in extra.build_chain().stages][-3:] == ["relay", "greylist", "recipient_limit"]


def test_defaults_are_postfix() -> None:
    chain = PrimaryMx(hostname="mx.example.net", local_domains=("example.net",)).build_chain()
    size = [s for s in chain.stages if isinstance(s, SizeLimit)][0]
    limit = [s for s in chain.stages if isinstance(s, RecipientLimit)][0]
    assert size.limit == 10_240_000 and (limit.limit, limit.mode) == (1000, "conformant")
    q = QueueingServer(hostname="q.isp.example", relay_domains=("dial.example",))
    assert q.etrn and q.finger and q.etrn_policy().domains == ("dial.example",)
    assert SmartHost(hostname="s.isp.example", trusted_networks=("10.0.0.0/8",)).require_fqdn_helo


@pytest.mark.parametrize("build,field", [
    (lambda: PrimaryMx(hostname="mx.example.net"), "local_domains"),
    (lambda: BackupMx(hostname="mx2.example.net"), "relay_domains"),
    (lambda: BackupMx(hostname="mx2.example.net", relay_domains=("a.example",),
                      local_domains=("a.example",)), "relay_domains"),
    (lambda: QueueingServer(hostname="q.example.net"), "relay_domains"),
    (lambda: CustomerMailServer(hostname="m.c.example", local_domains=("c.example",)), "mailboxes"),
    (lambda: CustomerMailServer(hostname="m.c.example", local_domains=("c.example",),
                                mailboxes=("a@other.example",)), "mailboxes"),
    (lambda: SmartHost(hostname="s.example.net"), "trusted_networks"),
    (lambda: IspOutbound(hostname="o.example.net"), "trusted_networks"),
    (lambda: PrimaryMx(hostname="mx.example.net", local_domains=("example.net",),
                       trusted_networks=("10.0.0.300/8",)), "trusted_networks"),
    (lambda: PrimaryMx(hostname="mx.example.net", local_domains=("bad_domain",)), "local_domains"),
    (lambda: PrimaryMx(hostname="mx.example.net", local_domains=("example.net",),
                       max_message_size=1000), "max_message_size"),
    (lambda: PrimaryMx(hostname="mx.example.net", local_domains=("example.net",),
                       recipient_limit_mode="sometimes"), "recipient_limit_mode"),
    (lambda: PrimaryMx(hostname="mx.example.net", local_domains=("example.net",),
                       allow_auth_relay=True), "users"),
    (lambda: PrimaryMx(hostname="not a host", local_domains=("example.net",)), "hostname"),
])
def test_invalid_configs_name_the_field(build, field: str) -> None:
    with pytest.raises(RoleError, match=rf"\.{field}:"):
        build()


def role_session(role, commands: list[str], ip_helo: str = "client.example.org") -> list[tuple[int, bytes]]:
    def client(port):
        s = smtplib.SMTP("127.0.0.1", port, local_hostname=ip_helo, timeout=10)
        out = [s.ehlo()]
        for c in commands:
            verb, _, arg = c.partition(" ")
            out.append(s.docmd(verb, arg))
        s.quit()
        return out

    async def go(port, server):
        return await asyncio.to_thread(client, port)
    return run_loopback(role, go)


def test_backup_mx_refuses_unknown_users_of_the_backed_up_domain() -> None:
    out, sink, _ = role_session(NON_RELAYING["backup_mx"], [
        "MAIL FROM:<s@sender.example>", "RCPT TO:<alice@example.net>", "RCPT TO:<bob@example.net>"])
    assert [c for c, _ in out[1:]] == [250, 250, 550]
    assert out[-1][1] == (b"5.1.1 <bob@example.net>: Recipient address rejected: "
                          b"User unknown in relay recipient table")


def test_smart_host_refuses_non_fqdn_helo_and_relays_for_customers() -> None:
    role = SmartHost(hostname="smtp.isp.example", trusted_networks=("127.0.0.0/8",))
    out, _, _ = role_session(role, ["MAIL FROM:<a@customer.example>"], ip_helo="mailhost")
    assert out[0][0] == 504 and b"need fully-qualified hostname" in out[0][1]
    assert out[1][0] == 503                    # no HELO name: no mail transaction
    out, _, _ = role_session(role, ["MAIL FROM:<a@customer.example>", "RCPT TO:<x@far.example>"],
                             ip_helo="mailhost.customer.example")
    assert [c for c, _ in out] == [250, 250, 250]


def test_isp_outbound_refuses_customer_run_server() -> None:
    # Loopback stands for the customer-run server here.
    role = IspOutbound(hostname="out.isp.example", trusted_networks=("127.0.0.0/8",),
                       untrusted_networks=("127.0.0.1",))
    out, _, _ = role_session(role, ["MAIL FROM:<a@cust.example>", "RCPT TO:<x@far.example>"])
    assert out[-1][0] == 554 and b"Relay access denied" in out[-1][1]
    subscriber = IspOutbound(hostname="out.isp.example", trusted_networks=("127.0.0.0/8",))
    out, _, _ = role_session(subscriber, ["MAIL FROM:<a@cust.example>", "RCPT TO:<x@far.example>"])
    assert out[-1][0] == 250


def test_primary_mx_accepts_its_domain_only() -> None:
    out, _, _ = role_session(NON_RELAYING["primary_mx"], [
        "MAIL FROM:<s@sender.example>", "RCPT TO:<anyone@example.net>", "RCPT TO:<x@far.example>",
        "RCPT TO:<postmaster>"])
    assert [c for c, _ in out[1:]] == [250, 250, 554, 250]


def test_stage_types_built() -> None:
    role = CustomerMailServer(hostname="mail.c.example", local_domains=("c.example",),
                              mailboxes=("a@c.example",), allowlist=("198.51.100.7",),
                              require_fqdn_helo=True)
    kinds = [type(s) for s in role.build_chain().stages]
    assert kinds[:2] == [ConnectAllowList, HeloFqdnStage] and RelayControl in kinds
