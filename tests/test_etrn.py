"""ETRN (RFC 1985): argument parsing, reply logic, and a real release on
loopback: queueing-server role + the real queue + a customer mail server."""
from __future__ import annotations

import asyncio

import aiosmtplib
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mta.context import HostContext
from mta.ondemand.etrn import (EtrnArg, EtrnPolicy, EtrnRelease, EtrnResult, EtrnSyntaxError, decide_etrn,
                              etrn_answer, etrn_reply, parse_etrn)
from mta.events import DeliveredToMailbox, EtrnRequest, Released
from mta.events.sinks import MemorySink
from mta.policy import Networks
from mta.roles import QueueingServer
from helpers.queue import held_mail_on_loopback, wait_for_mailbox


def test_parse_forms() -> None:
    assert parse_etrn("dial.example") == EtrnArg("node", "dial.example")
    assert parse_etrn("@Dial.Example") == EtrnArg("domain", "dial.example")
    assert parse_etrn("#dial.example.") == EtrnArg("queue", "dial.example")
    assert parse_etrn("@dial.example").include_subdomains
    assert not parse_etrn("#dial.example").include_subdomains


@pytest.mark.parametrize("arg,code", [
    (None, 500), ("", 500), ("a.example b.example", 500),
    ("@", 501), ("#", 501), ("@@x.example", 501), ("bad_name", 501), ("[192.0.2.1]", 501),
    ("-x.example", 501),
])
def test_parse_errors(arg, code: int) -> None:
    with pytest.raises(EtrnSyntaxError) as info:
        parse_etrn(arg)
    assert info.value.code == code


label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?", fullmatch=True)
domains = st.lists(label, min_size=1, max_size=4).map(".".join)


@given(st.sampled_from(["", "@", "#"]), domains)
def test_parse_roundtrip(prefix: str, domain: str) -> None:
    a = parse_etrn(prefix + domain.upper())
    assert a.name == domain and a.kind == {"": "node", "@": "domain", "#": "queue"}[prefix]


@given(st.text(max_size=40))
def test_parse_never_fails_unexpectedly(text: str) -> None:
    try:
        parse_etrn(text)
    except EtrnSyntaxError as exc:
        assert exc.code in (500, 501)


def test_reply_without_queue_and_policy_refusals() -> None:
    pol = EtrnPolicy(domains=("dial.example", ".dial.example"), clients=Networks(["192.0.2.0/24"]))
    r = etrn_reply("x.example", policy=pol, in_transaction=True, client_ip="192.0.2.50", target=None)
    assert r.reply == "503 Error: MAIL transaction in progress"
    r = etrn_reply("dial.example", policy=pol, in_transaction=False, client_ip="203.0.113.1", target=None)
    assert r.code == 459 and "Access denied" in r.text
    r = etrn_reply("other.example", policy=pol, in_transaction=False, client_ip="192.0.2.50", target=None)
    assert r.reply == "459 <other.example>: service unavailable"
    r = etrn_reply("a.dial.example", policy=pol, in_transaction=False, client_ip="192.0.2.50", target=None)
    assert r.reply == "458 Unable to queue messages for node a.dial.example"
    r = etrn_reply("x", policy=EtrnPolicy(enabled=False), in_transaction=False, client_ip="", target=None)
    assert r.code == 502


def test_decision_is_pure_and_names_what_to_release() -> None:
    pol = EtrnPolicy(domains=("dial.example", ".dial.example"), clients=Networks(["192.0.2.0/24"]))
    ask = lambda arg, ip="192.0.2.50": decide_etrn(arg, policy=pol, in_transaction=False, client_ip=ip)
    assert ask("@Dial.Example") == EtrnRelease("dial.example", True)
    assert ask("#dial.example") == EtrnRelease("dial.example", False)
    assert ask("a.dial.example") == EtrnRelease("a.dial.example", False)
    assert isinstance(ask("dial.example", ip="203.0.113.1"), EtrnResult)
    assert ask("") == EtrnResult(500, "Syntax: ETRN domain")


def test_answer_per_style_from_the_counts() -> None:
    assert etrn_answer("d.example", 3, 2, "rfc1985").reply == "253 OK, 2 pending messages for node d.example started"
    assert etrn_answer("d.example", 3, 0, "rfc1985").reply == "252 OK, pending messages for node d.example started"
    assert etrn_answer("d.example", 0, 0, "rfc1985").reply == "251 OK, no messages waiting for node d.example"
    for held, started in ((0, 0), (3, 0), (3, 2)):
        r = etrn_answer("d.example", held, started, "postfix")
        assert r.reply == "250 Queuing started" and r.released == started
        r = etrn_answer("domain.com", held, started, "queue-run")
        assert r.reply == "250 OK, queue -R 'domain.com' started" and r.released == started


# -- a real release over loopback ------------------------------------------------------------

async def _scenario(style: str):
    held = await held_mail_on_loopback(3)
    sink, q_ctx, queue, store, cust_srv = held.sink, held.ctx, held.queue, held.store, held.customer
    role = QueueingServer(hostname="q.isp.example", relay_domains=("dial.example",), etrn_style=style)
    q_srv = role.build_server(q_ctx, queue, release=queue)
    qport = (await q_srv.start("127.0.0.1", 0)).sockets[0].getsockname()[1]

    c = aiosmtplib.SMTP(hostname="127.0.0.1", port=qport, local_hostname="mail.dial.example")
    await c.connect()
    assert "etrn" in c.esmtp_extensions
    out = {}
    for arg in ("", "a.example b.example", "@@", "other.example"):
        r = await c.execute_command(b"ETRN", *([arg.encode()] if arg else []))
        out[arg] = (r.code, r.message)
    await c.mail("s@dial.example")
    r = await c.execute_command(b"ETRN", b"dial.example")
    out["in-transaction"] = (r.code, r.message)
    await c.rset()
    r = await c.execute_command(b"ETRN", b"#dial.example")
    out["first"] = (r.code, r.message)
    await wait_for_mailbox(store, "user@dial.example", 3)   # delivery runs over a new connection
    r = await c.execute_command(b"ETRN", b"@dial.example")
    out["again"] = (r.code, r.message)
    await c.quit()
    await queue.close()
    await q_srv.stop()
    await cust_srv.stop()
    await asyncio.sleep(0)
    return out, sink, store


def test_etrn_on_loopback_releases_held_mail_over_a_new_connection() -> None:
    out, sink, store = asyncio.run(_scenario("rfc1985"))
    assert out[""] == (500, "Syntax: ETRN domain")
    assert out["a.example b.example"][0] == 500
    assert out["@@"] == (501, "Error: invalid parameter syntax")
    assert out["other.example"] == (459, "<other.example>: service unavailable")
    assert out["in-transaction"] == (503, "Error: MAIL transaction in progress")
    assert out["first"] == (253, "OK, 3 pending messages for node dial.example started")
    assert out["again"] == (251, "OK, no messages waiting for node dial.example")
    assert len(store.messages("user@dial.example")) == 3
    etrn = sink.of_kind(EtrnRequest)
    assert [e.code for e in etrn] == [500, 500, 501, 459, 503, 253, 251]
    assert [(r.domain, r.trigger, r.count) for r in sink.of_kind(Released)][0] == ("dial.example", "etrn", 3)
    # Delivered on the customer host, through its own SMTP server.
    assert {e.host for e in sink.of_kind(DeliveredToMailbox)} == {"mail.dial.example"}


def test_etrn_postfix_style_always_250() -> None:
    out, _, store = asyncio.run(_scenario("postfix"))
    assert out["first"] == (250, "Queuing started")
    assert out["again"] == (250, "Queuing started")
    assert len(store.messages("user@dial.example")) == 3


def test_etrn_queue_run_style_is_the_reply_the_dialup_service_quotes() -> None:
    out, _, store = asyncio.run(_scenario("queue-run"))
    assert out["first"] == (250, "OK, queue -R 'dial.example' started")
    assert len(store.messages("user@dial.example")) == 3


class BusyQueue:
    """A ReleaseTarget whose held mail is all being delivered already (the
    real queue never reports that combination, so the 252 branch needs
    this), or whose release fails (458)."""

    def __init__(self, held: int, fail: bool = False) -> None:
        self.held, self.fail, self.calls = held, fail, []

    def held_count(self, domain: str, include_subdomains: bool) -> int:
        return self.held

    def release(self, domain: str, include_subdomains: bool, trigger: str, client_ip: str) -> int:
        self.calls.append((domain, include_subdomains, trigger, client_ip))
        if self.fail:
            raise OSError("queue unavailable")
        return 0


def test_252_and_458_branches() -> None:
    pol = EtrnPolicy()
    q = BusyQueue(2)
    r = etrn_reply("@dial.example", policy=pol, in_transaction=False, client_ip="192.0.2.50", target=q)
    assert r.reply == "252 OK, pending messages for node dial.example started"
    assert q.calls == [("dial.example", True, "etrn", "192.0.2.50")]
    r = etrn_reply("dial.example", policy=pol, in_transaction=False, client_ip="192.0.2.50",
                   target=BusyQueue(2, fail=True))
    assert r.reply == "458 Unable to queue messages for node dial.example"


def test_failed_release_answers_458_and_records_the_error() -> None:
    """A queue that raises in release() still gets 458 (RFC 1985), but the
    exception is recorded as a ComponentError instead of vanishing."""
    from mta.events import ComponentError

    async def scenario():
        sink = MemorySink()
        ctx = HostContext("q.isp.example", sink=sink)
        role = QueueingServer(hostname="q.isp.example", relay_domains=("dial.example",))
        srv = role.build_server(ctx, None, release=BusyQueue(1, fail=True))
        port = (await srv.start("127.0.0.1", 0)).sockets[0].getsockname()[1]
        c = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, local_hostname="mail.dial.example")
        await c.connect()
        r = await c.execute_command(b"ETRN", b"dial.example")
        await c.quit()
        await srv.stop()
        return (r.code, r.message), sink

    reply, sink = asyncio.run(scenario())
    assert reply == (458, "Unable to queue messages for node dial.example")
    errors = sink.of_kind(ComponentError)
    assert [(e.where, e.error) for e in errors] == [("smtp ETRN release", "OSError: queue unavailable")]
    assert [e.code for e in sink.of_kind(EtrnRequest)] == [458]
