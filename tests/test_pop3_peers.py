"""The POP3 server against an independent client implementation: curl's
POP3 support (libcurl), on loopback, with APOP and STLS.  Slow suite; needs
``apt-get install -y curl`` and fails, never skips, without it."""
from __future__ import annotations

import asyncio
import shutil
import ssl

import pytest
import trustme

from mta.events import ConnectionClosed, Pop3Login
from helpers.pop3 import BOB, HOST, USERS, run_live

pytestmark = pytest.mark.slow


def curl_bin() -> str:
    path = shutil.which("curl")
    assert path, "curl is missing: apt-get install -y curl"
    return path


async def curl(*args: str) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        curl_bin(), "-sS", "--max-time", "20", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode, out, err


def test_curl_lists_retrieves_and_deletes() -> None:
    async def client(port, server, store):
        base = f"pop3://127.0.0.1:{port}"
        auth = ["-u", f"bob:{USERS['bob']}"]
        listing = await curl(*auth, base + "/")
        retr = await curl(*auth, base + "/2")
        uidl = await curl(*auth, "-X", "UIDL", base + "/")
        dele = await curl(*auth, "-X", "DELE", "-I", base + "/1")     # -I: no body expected
        wrong = await curl("-u", "bob:nope", base + "/")
        return listing, retr, uidl, dele, wrong

    (listing, retr, uidl, dele, wrong), sink, store = run_live(client)
    assert listing[0] == 0, listing[2]
    assert [ln.split()[0] for ln in listing[1].splitlines()] == [b"1", b"2", b"3"]
    assert retr[0] == 0 and b"Subject: two\r\n" in retr[1] and b"bare LF body\r\n" in retr[1]
    assert uidl[0] == 0 and len(uidl[1].splitlines()) == 3
    assert dele[0] == 0, dele[2]
    assert wrong[0] == 67                       # CURLE_LOGIN_DENIED
    assert len(store.messages(BOB)) == 2        # curl's DELE then QUIT removed message 1
    assert [e.user for e in sink.of_kind(Pop3Login)] == ["bob"] * 4
    assert [e.reason for e in sink.of_kind(ConnectionClosed)].count("quit") >= 4


def test_curl_apop_and_stls(tmp_path) -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST, "127.0.0.1").configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))

    async def client(port, server, store):
        base = f"pop3://127.0.0.1:{port}"
        apop = await curl("-v", "-u", f"ann:{USERS['ann']}", "--login-options", "AUTH=+APOP", base + "/")
        tls = await curl("-v", "-u", f"bob:{USERS['bob']}", "--ssl-reqd", "--cacert", str(ca_file),
                         "--resolve", f"{HOST}:{port}:127.0.0.1", f"pop3://{HOST}:{port}/1")
        untrusted = await curl("-u", f"bob:{USERS['bob']}", "--ssl-reqd",
                               "--resolve", f"{HOST}:{port}:127.0.0.1", f"pop3://{HOST}:{port}/1")
        return apop, tls, untrusted

    (apop, tls, untrusted), sink, _ = run_live(client, ssl=server_ctx)
    assert apop[0] == 0, apop[2]
    assert b"> APOP ann " in apop[2] and b"> USER" not in apop[2]
    assert tls[0] == 0, tls[2]
    assert b"> STLS" in tls[2] and b"SSL certificate verify ok" in tls[2]
    assert b"Subject: one\r\n" in tls[1]
    assert untrusted[0] == 60                   # CURLE_PEER_FAILED_VERIFICATION
    assert [e.user for e in sink.of_kind(Pop3Login)] == ["ann", "bob"]
    assert "tls-failed" in [e.reason for e in sink.of_kind(ConnectionClosed)]
