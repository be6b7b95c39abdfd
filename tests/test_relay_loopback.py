"""The restricted relay on real loopback sockets with the standard library's
clients: STARTTLS (a trustme certificate) then AUTH with smtplib, AUTH
offered only after STARTTLS, a failed handshake recorded, and
POP-before-SMTP with poplib then smtplib."""
from __future__ import annotations

import asyncio
import shutil
import subprocess
import poplib
import smtplib
import ssl

import pytest
import trustme

from mta.context import HostContext
from mta.events import ConnectionClosed, MessageAccepted, PolicyDecision, SmtpReply
from mta.events.sinks import MemorySink
from mta.mailbox import MailboxStore
from mta.roles import RestrictedRelay
from mta.smtp.config import ServerConfig
from mta.smtp.server import SmtpServer

HOST = "relay.gconnect.example"
ROLE = RestrictedRelay(hostname=HOST, users={"dan": "s3cret"}, allow_auth_relay=True,
                       blocked_attachments=(".exe",))


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def contexts(ca: trustme.CA) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST, "127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


def run(client, *, tls: ssl.SSLContext | None, require_starttls: bool = False,
        role: RestrictedRelay = ROLE, pop: bool = False):
    """Start the relay (and its POP3 server) on loopback, run the blocking
    ``client(smtp_port, pop_port)`` in a thread, stop; (result, sink)."""
    async def main():
        sink = MemorySink()
        ctx = HostContext(HOST, sink=sink)
        store = MailboxStore(ctx)
        grants = role.build_grants()
        config = dataclass_config(role, tls, require_starttls)
        server = SmtpServer(ctx, role.build_chain(grants, ctx.now), store, config)
        srv = await server.start("127.0.0.1", 0)
        pop_port = None
        pop3 = role.build_pop3(ctx, store, grants) if pop else None
        if pop3 is not None:
            pop_port = (await pop3.start("127.0.0.1", 0)).sockets[0].getsockname()[1]
        try:
            return await asyncio.to_thread(client, srv.sockets[0].getsockname()[1],
                                           pop_port), sink
        finally:
            await server.stop()
            if pop3 is not None:
                await pop3.stop()
            for _ in range(5):
                await asyncio.sleep(0)
    return asyncio.run(main())


def dataclass_config(role: RestrictedRelay, tls, require_starttls) -> ServerConfig:
    base = role.server_config()
    return ServerConfig(banner=base.banner, users=base.users, tls_context=tls,
                        auth_require_tls=tls is not None, require_starttls=require_starttls)


MSG = b"From: dan@dan.example\r\nTo: x@example.net\r\nSubject: hi\r\n\r\nhello\r\n"


def test_starttls_then_auth_with_smtplib(ca) -> None:
    server_ctx, client_ctx = contexts(ca)

    def go(port, _):
        s = smtplib.SMTP("127.0.0.1", port, local_hostname="dan.example.org")
        s.ehlo()
        before = dict(s.esmtp_features)
        auth_plain = s.docmd("AUTH", "PLAIN " + "AGRhbgBzM2NyZXQ=")       # before TLS
        s.starttls(context=client_ctx)
        s.ehlo()
        after = dict(s.esmtp_features)
        cert = s.sock.getpeercert()
        again = s.docmd("STARTTLS")
        s.login("dan", "s3cret")
        refused = s.sendmail("dan@dan.example", ["x@example.net"], MSG)
        s.quit()
        return before, auth_plain, after, cert, again, refused

    (before, auth_plain, after, cert, again, refused), sink = run(go, tls=server_ctx)
    assert "starttls" in before and "auth" not in before
    assert auth_plain[0] == 538                       # aiosmtpd: encryption required
    assert "starttls" not in after and after["auth"].split() == ["LOGIN", "PLAIN"]
    assert ("DNS", HOST) in cert["subjectAltName"]
    assert again[0] == 554 and refused == {}
    assert len(sink.of_kind(MessageAccepted)) == 1
    assert [e.detail for e in sink.of_kind(PolicyDecision) if e.decision == "pass"] == \
        ["mechanism=PLAIN user=dan"]   # smtplib prefers PLAIN to LOGIN


def test_require_starttls_refuses_mail_before_it(ca) -> None:
    server_ctx, _ = contexts(ca)

    def go(port, _):
        s = smtplib.SMTP("127.0.0.1", port, local_hostname="dan.example.org")
        s.ehlo()
        r = s.docmd("MAIL", "FROM:<dan@dan.example>")
        s.quit()
        return r

    (code, text), _ = run(go, tls=server_ctx, require_starttls=True)
    assert (code, text) == (530, b"5.7.0 Must issue a STARTTLS command first")


def test_failed_handshake_is_recorded_and_the_server_keeps_serving(ca) -> None:
    server_ctx, _ = contexts(ca)

    def go(port, _):
        s = smtplib.SMTP("127.0.0.1", port, local_hostname="dan.example.org")
        s.ehlo()
        with pytest.raises(ssl.SSLError):
            s.starttls(context=ssl.create_default_context())       # does not trust the CA
        s.close()
        t = smtplib.SMTP("127.0.0.1", port, local_hostname="dan.example.org")
        code = t.noop()[0]
        t.quit()
        return code

    code, sink = run(go, tls=server_ctx)
    assert code == 250
    assert [e.decision for e in sink.of_kind(PolicyDecision)] == ["handshake-failed"]
    assert [e.reason for e in sink.of_kind(ConnectionClosed)] == ["tls-failed", "quit"]
    assert not [e for e in sink.events if type(e).__name__ == "ComponentError"]


def test_unauthenticated_mail_gets_530_and_bad_password_535() -> None:
    def go(port, _):
        s = smtplib.SMTP("127.0.0.1", port, local_hostname="eve.example.org")
        s.ehlo()
        mail = s.mail("eve@example.org")          # AUTH-only relay: RFC 4954 §6 at MAIL
        s.rset()
        with pytest.raises(smtplib.SMTPAuthenticationError) as bad:
            s.login("dan", "wrong")
        s.quit()
        return mail, bad.value.smtp_code

    (mail, bad), _ = run(go, tls=None)
    assert mail == (530, b"5.7.0 Authentication required") and bad == 535


def test_pop_before_smtp_with_poplib_then_smtplib() -> None:
    role = RestrictedRelay(hostname=HOST, pop_users={"alice": "pw"},
                           sender_domains={"alice": ("customer.example",)})

    def go(port, pop_port):
        try:
            smtplib.SMTP("127.0.0.1", port, local_hostname="alice.example.org")
            before = None
        except smtplib.SMTPConnectError as exc:        # 554 greeting: check mail first
            before = exc.smtp_code
        p = poplib.POP3("127.0.0.1", pop_port)
        p.user("alice")
        p.pass_("pw")
        p.quit()
        s = smtplib.SMTP("127.0.0.1", port, local_hostname="alice.example.org")
        with pytest.raises(smtplib.SMTPSenderRefused) as foreign:
            s.sendmail("alice@elsewhere.example", ["x@example.net"], MSG)
        refused = s.sendmail("alice@customer.example", ["x@example.net"], MSG)
        s.quit()
        return before, foreign.value.smtp_code, refused

    (before, foreign, refused), sink = run(go, tls=None, role=role, pop=True)
    assert (before, foreign, refused) == (554, 553, {})
    greetings = [e.code for e in sink.of_kind(SmtpReply) if e.command == "CONNECT"]
    assert greetings == [554, 220]


def _swaks(*args: str) -> subprocess.CompletedProcess:
    path = shutil.which("swaks")
    if path is None:     # the slow suite needs it: fail, never skip silently
        pytest.fail("swaks is not installed: apt-get install -y swaks libnet-ssleay-perl "
                    "libio-socket-ssl-perl")
    return subprocess.run([path, *args], capture_output=True, text=True, timeout=60)


@pytest.mark.slow
def test_swaks_starttls_and_auth(ca, tmp_path) -> None:
    server_ctx, _ = contexts(ca)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    common = ["--from", "dan@dan.example", "--to", "x@example.net", "--helo", "dan.example.org"]

    def go(port, _):
        ok = _swaks("-s", "127.0.0.1", "-p", str(port), "--tls", "--tls-verify",
                    "--tls-ca-path", str(ca_file), "--tls-sni", HOST,
                    "-a", "LOGIN", "-au", "dan", "-ap", "s3cret", *common)
        bad = _swaks("-s", "127.0.0.1", "-p", str(port), "--tls", "--tls-ca-path", str(ca_file),
                     "-a", "PLAIN", "-au", "dan", "-ap", "wrong", *common)
        none = _swaks("-s", "127.0.0.1", "-p", str(port), *common)
        return ok, bad, none

    (ok, bad, none), sink = run(go, tls=server_ctx)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "<~  235 2.7.0 Authentication successful" in ok.stdout
    assert "250 2.0.0 Ok: queued as" in ok.stdout
    assert bad.returncode != 0 and "535 5.7.8" in bad.stdout
    assert none.returncode != 0 and "530 5.7.0 Authentication required" in none.stdout
    assert len(sink.of_kind(MessageAccepted)) == 1
