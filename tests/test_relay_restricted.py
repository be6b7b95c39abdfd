"""The restricted relay (seeds 002/003) on the simulated world: POP-before-SMTP
through the real POP3 server, SMTP AUTH replies and hostile AUTH input,
the sender-affiliation rule and blocked attachments at end of DATA."""
from __future__ import annotations

import dataclasses

import base64

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mta.events import PolicyDecision, Pop3Login, SmtpReply
from mta.mailbox import MailboxStore
from mta.roles import RestrictedRelay, RoleError
from helpers.pop3 import AsyncPop3
from helpers.server import Peer
from sim.world.core import World

RELAY_IP, ROAMER_IP, OTHER_IP = "192.0.2.50", "198.51.100.77", "203.0.113.9"


class RelayWorld(World):
    """A world whose ``run_until_complete`` also lets the servers see the
    client's close (a few virtual seconds), so no connection is left open."""

    def run_until_complete(self, host, coro):
        result = super().run_until_complete(host, coro)
        self.run(until=self.now() + 5)
        return result


def relay_world(role: RestrictedRelay):
    """The relay's SMTP server on 25 and 2525 and (with POP) its POP3 server."""
    world = RelayWorld(seed=5, scenario="relay")
    relay = world.add_host(role.hostname, RELAY_IP)
    roamer = world.add_host("roamer.dialup.example", ROAMER_IP)
    other = world.add_host("other.dialup.example", OTHER_IP)
    store = MailboxStore(relay.ctx)
    grants = role.build_grants()
    for port in (25, 2525):
        server = role.build_server(relay.ctx, store, grants=grants)
        world.run_until_complete(relay, server.start(None, port))
    pop = role.build_pop3(relay.ctx, store, grants)
    if pop is not None:
        world.run_until_complete(relay, pop.start(None, 110))
    return world, roamer, other, grants


POP_RELAY = RestrictedRelay(hostname="relay.provider.example",
                            pop_users={"alice": "pw"}, pop_window=5400.0,
                            sender_domains={"alice": ("customer.example",)},
                            blocked_attachments=(".exe", ".scr"))
AUTH_RELAY = RestrictedRelay(hostname="relay.provider.example", users={"dan": "secret"},
                             allow_auth_relay=True,
                             sender_domains={"dan": ("dan.example",)})


async def pop_check(user: str = "alice", password: str = "pw") -> bytes:
    c = await AsyncPop3.connect(RELAY_IP, 110)
    await c.cmd(f"USER {user}")
    r = await c.cmd(f"PASS {password}")
    await c.cmd("QUIT")
    await c.close()
    return r


async def dialogue(lines: list[bytes], port: int = 25) -> list[tuple[int, str]]:
    c = await Peer("", RELAY_IP, port, None).open()
    out = [await c.reply()]
    for line in lines:
        try:
            out.append(await c.command(line))
        except ConnectionError:
            break
    c.close()
    return out


MAIL = [b"EHLO roamer.dialup.example", b"MAIL FROM:<alice@customer.example>",
        b"RCPT TO:<bob@example.net>"]


def test_pop_before_smtp_window_opens_closes_and_is_renewed() -> None:
    world, roamer, other, grants = relay_world(POP_RELAY)
    # Before any login: the seed's "will reject all connections".
    first = world.run_until_complete(roamer, dialogue([b"EHLO roamer.dialup.example"]))
    assert first[0][0] == 554 and "check your mail" in first[0][1]
    assert first[1][0] == 503                       # lock-down: 503 to all but QUIT
    assert world.run_until_complete(roamer, pop_check()).startswith(b"+OK")
    ok = world.run_until_complete(roamer, dialogue(MAIL))
    assert [c for c, _ in ok] == [220, 250, 250, 250]
    # Another address is still refused; so is the roamer once 90 minutes pass.
    assert world.run_until_complete(other, dialogue([]))[0][0] == 554
    world.run(until=world.now() + 5400)
    assert world.run_until_complete(roamer, dialogue([]))[0][0] == 554
    # A new login renews a full window, on the 2525 listener too.
    world.run_until_complete(roamer, pop_check())
    assert [c for c, _ in world.run_until_complete(roamer, dialogue(MAIL, 2525))] == \
        [220, 250, 250, 250]
    assert [e.user for e in world.events if isinstance(e, Pop3Login)] == ["alice", "alice"]
    granted = [e for e in world.events if isinstance(e, PolicyDecision)
               and e.stage == "pop-before-smtp"]
    assert len(granted) == 2 and all("user=alice" in e.detail for e in granted)


def test_failed_pop_login_opens_nothing_and_rcpt_refusal_mode() -> None:
    role = RestrictedRelay(hostname="relay.provider.example", pop_users={"alice": "pw"},
                           refuse_at="rcpt")
    world, roamer, _, grants = relay_world(role)
    assert world.run_until_complete(roamer, pop_check(password="nope")).startswith(b"-ERR")
    out = world.run_until_complete(roamer, dialogue(MAIL))
    assert [c for c, _ in out] == [220, 250, 250, 554]
    assert "Relay access denied" in out[-1][1]
    assert len(grants) == 0


def test_sender_affiliated_for_pop_account_and_auth_user() -> None:
    world, roamer, _, _ = relay_world(POP_RELAY)
    world.run_until_complete(roamer, pop_check())
    out = world.run_until_complete(roamer, dialogue(
        [b"EHLO r.example", b"MAIL FROM:<alice@elsewhere.example>",
         b"MAIL FROM:<alice@customer.example>"]))
    assert out[2] == (553, "5.7.1 <alice@elsewhere.example>: Sender address rejected: "
                           "not owned by user alice")
    assert out[3][0] == 250
    world, roamer, _, _ = relay_world(AUTH_RELAY)
    plain = base64.b64encode(b"\0dan\0secret")
    out = world.run_until_complete(roamer, dialogue(
        [b"EHLO r.example", b"AUTH PLAIN " + plain, b"MAIL FROM:<dan@customer.example>",
         b"MAIL FROM:<dan@dan.example>", b"RCPT TO:<x@example.net>"]))
    assert [c for c, _ in out] == [220, 250, 235, 553, 250, 250]


def test_auth_only_relay_refuses_mail_before_auth_with_530() -> None:
    world, roamer, _, _ = relay_world(AUTH_RELAY)
    out = world.run_until_complete(roamer, dialogue(
        [b"EHLO r.example", b"MAIL FROM:<dan@dan.example>", b"RCPT TO:<x@example.net>"]))
    assert out[2:] == [(530, "5.7.0 Authentication required"),
                       (503, "5.5.1 Error: need MAIL command")]


def test_auth_required_bad_credentials_and_auth_in_transaction() -> None:
    # A relay that also serves a domain takes MAIL before AUTH: the 530
    # comes at RCPT for a domain it does not serve, and AUTH is then inside
    # a transaction (503).
    world, roamer, _, _ = relay_world(dataclasses.replace(AUTH_RELAY,
                                                          local_domains=("provider.example",)))
    out = world.run_until_complete(roamer, dialogue(
        [b"EHLO r.example", b"MAIL FROM:<dan@dan.example>", b"RCPT TO:<x@example.net>",
         b"AUTH PLAIN " + base64.b64encode(b"\0dan\0secret"),       # inside the transaction
         b"RSET",
         b"AUTH PLAIN " + base64.b64encode(b"\0dan\0wrong"),
         b"AUTH PLAIN " + base64.b64encode(b"\0dan\0wrong"),        # replayed after failure
         b"AUTH LOGIN " + base64.b64encode(b"dan"), base64.b64encode(b"secret"),
         b"MAIL FROM:<dan@dan.example>", b"RCPT TO:<x@example.net>"]))
    codes = [c for c, _ in out]
    assert codes == [220, 250, 250, 530, 503, 250, 535, 535, 334, 235, 250, 250]
    assert out[3][1] == "5.7.0 Authentication required"
    assert out[6][1].startswith("5.7.8")
    fails = [e for e in world.events if isinstance(e, PolicyDecision) and e.stage == "smtp-auth"
             and e.decision == "fail"]
    passes = [e.detail for e in world.events if isinstance(e, PolicyDecision)
              and e.decision == "pass"]
    assert passes == ["mechanism=LOGIN user=dan"]
    # (the 503 is the command-order table's, before AUTH runs: its SmtpReply is the record)
    assert [e.detail for e in fails] == ["mechanism=PLAIN reply=535", "mechanism=PLAIN reply=535"]


@pytest.mark.parametrize("lines,last", [
    ([b"AUTH PLAIN !!!notbase64"], 501),
    ([b"AUTH PLAIN ="], 501),                                    # RFC 4954 empty response
    ([b"AUTH PLAIN " + base64.b64encode(b"no-nul-at-all")], 501),
    ([b"AUTH PLAIN", b""], 501),                                  # empty answer to 334
    ([b"AUTH PLAIN", b"*"], 501),                                 # cancelled
    ([b"AUTH PLAIN", b"A" * 5000], 500),                          # oversized answer
    ([b"AUTH LOGIN", b"%%%"], 501),
    ([b"AUTH LOGIN " + base64.b64encode("d\u00e4n".encode("latin-1")), b"\xff\xfe"], 501),
    ([b"AUTH CRAM-MD5"], 504),
    ([b"AUTH"], 501),
])
def test_malformed_auth_gets_a_reply_and_an_event_never_a_crash(lines, last) -> None:
    world, roamer, _, _ = relay_world(AUTH_RELAY)
    out = world.run_until_complete(roamer, dialogue([b"EHLO r.example", *lines, b"NOOP"]))
    assert out[-2][0] == last and out[-1][0] == 250        # still serving after it
    assert not [e for e in world.events if type(e).__name__ == "ComponentError"]
    fails = [e for e in world.events if isinstance(e, PolicyDecision) and e.stage == "smtp-auth"]
    assert len(fails) == 1 and fails[0].detail.endswith(f"reply={last}")


def _message(filename: str) -> bytes:
    return (b"From: alice@customer.example\r\nTo: bob@example.net\r\nSubject: s\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
            b"--XX\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
            b"--XX\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Disposition: attachment; filename=\"" + filename.encode() + b"\"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\nTVo=\r\n--XX--\r\n.")


@pytest.mark.parametrize("name,code", [("invoice.txt.EXE. ", 550), ("notes.txt", 250),
                                       ("screen.scr", 550)])
def test_blocked_attachment_refused_at_end_of_data_naming_the_file(name, code) -> None:
    world, roamer, _, _ = relay_world(POP_RELAY)
    world.run_until_complete(roamer, pop_check())
    out = world.run_until_complete(roamer, dialogue([*MAIL, b"DATA", _message(name)]))
    assert out[-1][0] == code
    if code == 550:
        assert out[-1][1].startswith(f'5.7.1 Attachment "{name}" refused')
        notes = [e for e in world.events if isinstance(e, PolicyDecision)
                 and e.decision == "blocked-attachment"]
        assert len(notes) == 1 and "ext=." in notes[0].detail
        end = [e for e in world.events if isinstance(e, SmtpReply) and e.command == "DATA_END"]
        assert end[-1].stage == "attachments"


def test_role_refuses_settings_that_cannot_work() -> None:
    with pytest.raises(RoleError, match="refuse_at"):
        RestrictedRelay(hostname="r.example", users={"a": "b"}, allow_auth_relay=True,
                        pop_users={"c": "d"})                  # 554 greeting locks AUTH out
    with pytest.raises(RoleError, match="sender_domains"):
        RestrictedRelay(hostname="r.example", pop_users={"c": "d"},
                        sender_domains={"nobody": ("x.example",)})
    with pytest.raises(RoleError, match="blocked_attachments"):
        RestrictedRelay(hostname="r.example", blocked_attachments=(".",))
    with pytest.raises(RoleError, match="grant table"):
        RestrictedRelay(hostname="r.example", pop_users={"c": "d"}).build_chain()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mech=st.sampled_from([b"PLAIN", b"LOGIN", b"plain", b"CRAM-MD5", b"X"]),
       initial=st.one_of(st.none(), st.binary(max_size=80)),
       answers=st.lists(st.binary(max_size=300).filter(lambda b: b"\n" not in b), max_size=3))
def test_any_auth_exchange_gets_a_reply_never_a_crash(mech, initial, answers) -> None:
    world, roamer, _, _ = relay_world(AUTH_RELAY)
    line = b"AUTH " + mech + (b" " + initial.replace(b"\n", b"").replace(b"\r", b"")
                              if initial is not None else b"")
    out = world.run_until_complete(roamer, dialogue([b"EHLO r.example", line, *answers,
                                                     b"RSET", b"NOOP"]))
    # (RSET and NOOP may be read as answers to a 334: any reply, never none,
    # unless the server hung up on purpose: a header sent as a command, 221)
    assert all(200 <= code < 600 for code, _ in out)
    assert len(out) == len(answers) + 5 or out[-1][0] in (221, 421)
    assert not [e for e in world.events if type(e).__name__ == "ComponentError"]
    assert world.run_until_complete(roamer, dialogue([b"NOOP"]))[1][0] == 250


def test_auth_guessing_in_a_loop_hits_the_hard_error_limit() -> None:
    world, roamer, _, _ = relay_world(AUTH_RELAY)
    wrong = b"AUTH PLAIN " + base64.b64encode(b"\0dan\0guess")
    out = world.run_until_complete(roamer, dialogue([b"EHLO r.example"] + [wrong] * 25))
    codes = [c for c, _ in out]
    assert codes[2:22] == [535] * 20 and codes[-1] == 421      # Postfix's limit of 20
    fails = [e for e in world.events if isinstance(e, PolicyDecision) and e.decision == "fail"]
    assert len(fails) == 20


def test_auth_required_stage_is_a_pure_decision_at_mail() -> None:
    from mta.addresses import parse_mailbox
    from mta.policy import Facts, Networks
    from mta.policy.relay_access import AuthRequired
    stage = AuthRequired(exempt=Networks(("10.0.0.0/8",)))
    sender = parse_mailbox("a@b.example")
    d = stage.on_mail(Facts(client_ip="198.51.100.1"), sender)
    assert (d.code, d.enhanced, d.text) == (530, "5.7.0", "Authentication required")
    assert stage.on_mail(Facts(client_ip="198.51.100.1", authenticated=True), sender) is None
    assert stage.on_mail(Facts(client_ip="198.51.100.1", grants={"relay"}), sender) is None
    assert stage.on_mail(Facts(client_ip="10.1.2.3"), sender) is None


def test_only_an_auth_only_relay_refuses_at_mail() -> None:
    assert AUTH_RELAY.auth_only
    assert not dataclasses.replace(AUTH_RELAY, local_domains=("provider.example",)).auth_only
    pop = RestrictedRelay(hostname="r.example", users={"dan": "pw"}, allow_auth_relay=True,
                          pop_users={"alice": "pw"}, refuse_at="rcpt")
    assert not pop.auth_only
