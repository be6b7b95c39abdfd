"""``mxsim probe`` and STARTTLS: AUTH judged on the TLS session when a server
offers AUTH only after STARTTLS (Postfix's ``smtpd_tls_auth_only = yes``),
"AUTH offered over cleartext" as its own finding, certificates not verified
unless ``--tls-ca`` names the CA.  Against mxsim's relay as ``mxsim serve``
builds it, and (slow) against Postfix configured both ways."""
from __future__ import annotations

import asyncio
import socket
import ssl

import pytest
import trustme

from helpers.postfix import PostfixInstance
from mta.events.sinks import MemorySink
from mta.probes import judge as j
from mta.probes.client import HandshakeError, ProbeClient
from mta.probes.findings import Reply
from mta.probes.run import ProbeOptions, probe_target
from sim.cli import main
from sim.live.host import LiveHost
from sim.live.listen import Endpoint
from sim.pipeline import load_string
from sim.wiring import plan_hosts

RELAY = """\
name: probe-tls
seed: 1
duration: 1h
hosts:
  - {name: relay.example.com, address: 192.0.2.20}
roles:
  - role: relay
    host: relay.example.com
    auth: {users: {dan: dan-pw}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture
def pems(tmp_path, ca):
    """(certificate chain, key, CA) files for a server on 127.0.0.1."""
    cert = ca.issue_cert("127.0.0.1", "relay.example.com")
    paths = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(paths[0]))
    cert.private_key_pem.write_to_path(str(paths[1]))
    ca.cert_pem.write_to_path(str(paths[2]))
    return paths


def by_probe(findings):
    return {f.probe: f for f in findings}


async def probe_relay(tmp_path, tls_context, **options):
    plan = plan_hosts(load_string(RELAY))["relay.example.com"]
    host = LiveHost(plan, tmp_path / "state", MemorySink(), resolver=None,
                    listen={25: Endpoint("127.0.0.1", 0)}, grace=0.1, tls=tls_context)
    (tmp_path / "state").mkdir(exist_ok=True)
    ready = await host.start()
    try:
        return await probe_target(ProbeOptions(host="127.0.0.1", port=ready[0].bound.port,
                                               token="t1", **options))
    finally:
        await host.drain()


def server_context(pems) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(pems[0]), str(pems[1]))
    return context


def test_served_relay_with_a_certificate_is_judged_on_the_tls_session(tmp_path, pems):
    found = by_probe(asyncio.run(probe_relay(tmp_path, server_context(pems))))
    assert found["starttls"].status == "pass"
    assert "certificate not verified" in found["starttls"].summary
    auth = found["auth-relay"]
    assert auth.status == "pass" and "530" in auth.summary, auth
    assert "on the TLS session (TLSv1." in auth.summary and "not verified" in auth.summary
    assert found["auth-cleartext"].status == "pass"
    assert "only after STARTTLS (LOGIN PLAIN)" in found["auth-cleartext"].summary


def test_tls_ca_verifies_the_certificate(tmp_path, pems):
    found = by_probe(asyncio.run(probe_relay(tmp_path, server_context(pems),
                                             tls_ca=str(pems[2]))))
    assert found["starttls"].status == "pass"
    assert "certificate verified" in found["starttls"].summary


def test_a_certificate_from_another_ca_fails_starttls_when_verifying(tmp_path, pems):
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    found = by_probe(asyncio.run(probe_relay(tmp_path, server_context(pems), tls_ca=str(other))))
    assert found["starttls"].status == "fail"
    assert "handshake failed" in found["starttls"].summary
    # Without a TLS session, AUTH is judged where it was seen: nowhere (offered after TLS only).
    assert found["auth-relay"].status == "skip"


def test_served_relay_without_tls_offers_auth_over_cleartext(tmp_path):
    found = by_probe(asyncio.run(probe_relay(tmp_path, None)))
    assert found["starttls"].status == "info"
    clear = found["auth-cleartext"]
    assert clear.status == "fail", clear
    assert clear.summary.startswith("AUTH offered over cleartext: LOGIN PLAIN")
    assert found["auth-relay"].status == "pass"       # judged on the cleartext session


def test_a_handshake_that_fails_after_220_is_a_finding_not_a_target_error():
    async def bogus(reader, writer):
        writer.write(b"220 bogus.example ESMTP\r\n")
        await reader.readline()
        writer.write(b"220 go ahead\r\n")
        await writer.drain()
        await reader.read(100)              # the ClientHello
        writer.write(b"this is not TLS\r\n" * 10)
        await writer.drain()
        writer.close()

    async def go():
        server = await asyncio.start_server(bogus, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client, _ = await ProbeClient.connect("127.0.0.1", port)
        try:
            with pytest.raises(HandshakeError):
                await client.starttls(ProbeOptions(host="127.0.0.1").tls_context(), None)
        finally:
            await client.close(quit=False)
            server.close()
    asyncio.run(go())


def test_cleartext_judge_tables():
    plain = {"AUTH": "PLAIN LOGIN", "STARTTLS": ""}
    cram = {"AUTH": "CRAM-MD5"}
    assert j.judge_auth_cleartext(plain, None, True).status == "fail"
    assert "STARTTLS is offered" in j.judge_auth_cleartext(plain, None, True).summary
    assert "no STARTTLS" in j.judge_auth_cleartext({"AUTH": "LOGIN"}, None, False).summary
    assert j.judge_auth_cleartext(cram, None, False).status == "info"
    assert j.judge_auth_cleartext({"STARTTLS": ""}, {"AUTH": "PLAIN"}, True).status == "pass"
    assert j.judge_auth_cleartext({}, None, False).status == "skip"
    assert j.judge_starttls(True, Reply(454, ("4.7.0 TLS not available",)), None, None,
                            False).status == "fail"


# --------------------------------------------------------------------------
# Postfix (slow)
# --------------------------------------------------------------------------

def postfix(pems, auth_only: bool) -> PostfixInstance:
    """A closed Postfix (loopback is not in mynetworks) with STARTTLS and
    Cyrus SASL (every mechanism the installed plugins have, PLAIN and LOGIN
    among them), AUTH only after STARTTLS when ``auth_only``."""
    return PostfixInstance(free_port(), hostname="tls.mxsim.test", mynetworks="192.0.2.0/24",
                           settings={
                               "smtpd_tls_security_level": "may",
                               "smtpd_tls_cert_file": str(pems[0]),
                               "smtpd_tls_key_file": str(pems[1]),
                               "smtpd_tls_auth_only": "yes" if auth_only else "no",
                               "smtpd_sasl_auth_enable": "yes",
                               "smtpd_sasl_type": "cyrus",
                               "smtpd_sasl_path": "smtpd",
                               "smtpd_relay_restrictions":
                                   "permit_sasl_authenticated, reject_unauth_destination"})


@pytest.mark.slow
@pytest.mark.parametrize("auth_only", [True, False])
def test_probe_against_postfix_with_and_without_tls_auth_only(pems, capsys, auth_only):
    with postfix(pems, auth_only) as pf:
        rc = main(["probe", f"127.0.0.1:{pf.port}", "--domain", "tls.mxsim.test",
                   "--recipients", "5"])
        out = capsys.readouterr().out
    lines = {l.split()[0]: l for l in out.splitlines()[2:-1]}
    assert "starttls" in lines and " pass " in lines["starttls"], out
    assert "certificate not verified" in lines["starttls"], out
    if auth_only:
        assert " pass " in lines["auth-relay"] and "on the TLS session" in lines["auth-relay"], out
        assert "AUTH offered only after STARTTLS" in lines["auth-cleartext"], out
        assert " LOGIN " in lines["auth-cleartext"] and " PLAIN " in lines["auth-cleartext"]
        assert rc == 0
    else:
        assert "FAIL" in lines["auth-cleartext"], out
        assert "AUTH offered over cleartext: LOGIN PLAIN" in lines["auth-cleartext"], out
        assert rc == 1


@pytest.mark.slow
def test_mxsim_probe_against_mxsim_serve_with_a_certificate(tmp_path, pems, capsys):
    from helpers.serve import start_serve
    path = tmp_path / "relay.yaml"
    path.write_text(RELAY)
    served = start_serve(path, "relay.example.com", tmp_path / "state",
                         "--tls-cert", str(pems[0]), "--tls-key", str(pems[1]))
    try:
        rc = main(["probe", f"127.0.0.1:{served.port()}", "--recipients", "5",
                   "--tls-ca", str(pems[2])])
        out = capsys.readouterr().out
    finally:
        assert served.stop() == 0
    lines = {l.split()[0]: l for l in out.splitlines()[2:-1]}
    assert rc == 0, out
    assert "certificate verified" in lines["starttls"], out
    assert "530 5.7.0" in lines["auth-relay"] and "on the TLS session" in lines["auth-relay"], out
    assert "AUTH offered only after STARTTLS (LOGIN PLAIN)" in lines["auth-cleartext"], out


def test_an_auth_only_relay_refusing_mail_is_not_a_size_or_pipelining_failure():
    auth = Reply(530, ("5.7.0 Authentication required",))
    assert j.judge_size(1000, auth, auth).status == "skip"
    lines = ["MAIL FROM:<a@b.example>", "RCPT TO:<c@d.example>", "RSET", "NOOP"]
    ok = Reply(250, ("2.0.0 OK",))
    replies = [auth, Reply(503, ("5.5.1 need MAIL",)), ok, ok]
    assert j.judge_pipelining(True, lines, replies).status == "pass"
