"""The roaming customer's mail client in whole scenarios: POP3 check then
send, port fallback on a blocked port 25, interception noticed from the
banner, AUTH, and what the relay answers (events on both sides)."""
from __future__ import annotations

from pathlib import Path

from mta.events import ClientSubmission, ConnectAttempt, SmtpReply
from sim.actors.roaming import attach
from sim.pipeline import run_scenario
from sim.scenario.loader import load_scenario

LIBRARY = Path(__file__).resolve().parents[1] / "scenarios"


def run(name: str):
    return run_scenario(load_scenario(LIBRARY / f"{name}.yaml"), write=False)


def outcomes(result, host_prefix: str, service: str = "smtp") -> list[tuple[int, str]]:
    return [(e.port, e.outcome) for e in result.events if isinstance(e, ClientSubmission)
            and e.host.startswith(host_prefix) and e.service == service]


def test_blocked_port_25_falls_back_to_2525_and_only_the_fallback_sends() -> None:
    r = run("alt-port-2525")
    alice = outcomes(r, "alice")
    assert alice == [(25, "timeout"), (2525, "sent")] * 4
    assert outcomes(r, "carol") == [(25, "timeout")] * 4
    assert outcomes(r, "alice", "pop3") == [(110, "checked")] * 4
    # The timeouts are the network's (SYNs dropped), seen as ConnectAttempts.
    timeouts = [e for e in r.events if isinstance(e, ConnectAttempt) and e.purpose == "submit"
                and e.outcome == "timeout"]
    assert len(timeouts) == 8 and {e.port for e in timeouts} == {25}


def test_interception_noticed_from_the_banner_auth_fails_there() -> None:
    r = run("port25-interception")
    assert outcomes(r, "dan") == [(25, "intercepted"), (25, "auth-failed"), (2525, "sent")] * 4
    seen = [e for e in r.events if isinstance(e, ClientSubmission) and e.outcome == "intercepted"]
    assert "smtp.isp.example" in seen[0].detail and "gconnect" in seen[0].detail
    # The ISP's server, not the relay, answered the AUTH on port 25.
    auth = [e for e in r.events if isinstance(e, SmtpReply) and e.command == "AUTH"]
    assert {(e.host, e.code) for e in auth} == {("smtp.isp.example", 503),
                                                ("relay.gconnect.example", 235)}


def test_pop_window_closes_for_a_client_that_checked_once() -> None:
    r = run("pop-before-smtp-window")
    assert outcomes(r, "alice") == [(25, "sent")] * 5 + [(25, "rejected")] * 2
    assert set(outcomes(r, "bob")) == {(25, "sent")}
    greet = [e for e in r.events if isinstance(e, SmtpReply) and e.command == "CONNECT"
             and e.code == 554]
    assert {e.client_ip for e in greet} == {"203.0.113.21", "198.18.7.7"}


def test_attachment_builder_gives_one_multipart_with_the_name() -> None:
    from mta.filters.mime import walk
    msg = attach(b"From: a@b.example\r\nContent-Type: text/plain\r\nMIME-Version: 1.0\r\n\r\nhi",
                 'we"ird.exe')
    names = [n.value for p in walk(msg).parts for n in p.names]
    assert names == ['we"ird.exe'] and msg.count(b"Content-Type: multipart/mixed") == 1
