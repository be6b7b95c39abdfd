"""The virus stage: the built-in scanner, verdicts, the clamd adapter's failures.

The clamd adapter against a real clamd is in tests/test_filters_daemons.py
(slow); here it meets real loopback peers that do not answer as clamd:
a closed port, a peer that never answers, one that hangs up, one that
talks nonsense.
"""
from __future__ import annotations

import asyncio

import pytest

from mta.filters.clamav import ClamdScanner
from mta.filters.mime import WalkLimits
from mta.filters.replies import TEMPFAIL
from mta.filters.virus import EICAR, BuiltinScanner, Signature, Status, VirusVerdict
from helpers.filter_corpus import VIRUS_CORPUS, multipart, plain, zip_bomb
from helpers.filter_daemons import free_port
from helpers.filter_suites import VirusScannerSuite


class TestBuiltinScanner(VirusScannerSuite):
    @pytest.fixture
    def scanner(self):
        return BuiltinScanner()


def test_builtin_names_the_signature_exactly():
    verdict = BuiltinScanner().scan_sync(VIRUS_CORPUS["eicar-zip"][0])
    assert verdict.signatures == ("Eicar-Test-Signature",)
    assert verdict.discard_reason == "virus: Eicar-Test-Signature"


def test_eicar_anywhere_in_a_part_counts():
    assert BuiltinScanner().scan_sync(plain(b"see: " + EICAR + b" (test)")).status is Status.INFECTED
    split = EICAR[:30] + b"=\r\n" + EICAR[30:]       # a QP soft line break inside it
    message = multipart([b"Content-Type: text/plain\r\nContent-Transfer-Encoding: "
                         b"quoted-printable\r\n\r\n" + split])
    assert BuiltinScanner().scan_sync(message).status is Status.INFECTED


def test_zip_bomb_is_an_error_verdict_with_tempfail():
    verdict = BuiltinScanner().scan_sync(zip_bomb(8 * 1024 * 1024))
    assert verdict.status is Status.ERROR and "zip-bomb" in verdict.reason
    assert verdict.reply == TEMPFAIL
    assert str(verdict.reply).startswith("451 4.7.1 ")


def test_infected_wins_over_unscanned_content():
    message = multipart([plain(EICAR),
                         b"Content-Type: application/zip\r\n\r\nPK\x03\x04garbage"])
    verdict = BuiltinScanner().scan_sync(message)
    assert verdict.status is Status.INFECTED
    assert any("zip-corrupt" in note for note in verdict.notes)


def test_malformed_mime_without_virus_is_an_error_not_a_pass():
    verdict = BuiltinScanner().scan_sync(b"Content-Type: multipart/mixed\r\n\r\nhello")
    assert verdict.status is Status.ERROR and "NoBoundaryInMultipartDefect" in verdict.reason


def test_defects_alone_leave_a_clean_verdict_with_notes():
    message = multipart([plain(b"hi")]).rsplit(b"--=_b1--", 1)[0]
    verdict = BuiltinScanner().scan_sync(message)
    assert verdict.status is Status.CLEAN and verdict.notes


def test_zero_byte_message_is_clean():
    assert BuiltinScanner().scan_sync(b"").status is Status.CLEAN


def test_custom_signatures_and_limits():
    scanner = BuiltinScanner(signatures=(Signature("Test.Marker", b"MARKER-42"),),
                             limits=WalkLimits(max_total_bytes=1000))
    assert scanner.scan_sync(plain(b"x MARKER-42 y")).signatures == ("Test.Marker",)
    assert scanner.scan_sync(plain(EICAR)).status is Status.CLEAN
    with pytest.raises(ValueError):
        Signature("empty", b"")


def test_verdict_invariants():
    with pytest.raises(ValueError):
        VirusVerdict(status=Status.INFECTED, scanner="x")
    with pytest.raises(ValueError):
        VirusVerdict(status=Status.ERROR, scanner="x")
    with pytest.raises(ValueError):
        VirusVerdict(status=Status.CLEAN, scanner="x", signatures=("a",))


# -- the clamd adapter against peers that are not a working clamd ----------

def test_clamd_down_is_an_error_verdict():
    scanner = ClamdScanner("127.0.0.1", free_port(), timeout=5)
    verdict = asyncio.run(scanner.scan(plain(b"hello")))
    assert verdict.status is Status.ERROR and "unreachable" in verdict.reason
    assert verdict.reply == TEMPFAIL
    assert asyncio.run(scanner.ping()) is False


async def _against(handler, message: bytes, timeout: float = 5.0) -> VirusVerdict:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        return await ClamdScanner("127.0.0.1", port, timeout=timeout).scan(message)
    finally:
        server.close()
        await server.wait_closed()


def test_clamd_that_never_answers_times_out():
    async def silent(reader, writer):
        await reader.read()          # swallow everything, answer nothing
        await asyncio.sleep(30)
    verdict = asyncio.run(_against(silent, plain(b"hello"), timeout=0.5))
    assert verdict.status is Status.ERROR and "timed out" in verdict.reason


def test_clamd_that_dies_mid_scan():
    async def dies(reader, writer):
        await reader.read(10)
        writer.transport.abort()     # connection reset, as when clamd is killed
    verdict = asyncio.run(_against(dies, plain(b"x" * 200_000)))
    assert verdict.status is Status.ERROR


@pytest.mark.parametrize("answer,status", [
    (b"stream: OK\n", Status.CLEAN),
    (b"stream: Win.Test.EICAR_HDB-1 FOUND\n", Status.INFECTED),
    (b"stream: Heuristics.Limits.Exceeded.MaxScanSize FOUND\n", Status.ERROR),
    (b"stream: Can't allocate memory ERROR\n", Status.ERROR),
    (b"INSTREAM size limit exceeded. ERROR\n", Status.ERROR),
    (b"", Status.ERROR),
    (b"\xff\xfe nonsense", Status.ERROR),
])
def test_clamd_answers_are_interpreted(answer, status):
    async def answers(reader, writer):
        assert await reader.readuntil(b"\n") == b"nINSTREAM\n"
        while size := int.from_bytes(await reader.readexactly(4), "big"):
            await reader.readexactly(size)   # INSTREAM: chunks up to a zero length
        writer.write(answer)
        await writer.drain()
        writer.close()
    verdict = asyncio.run(_against(answers, plain(b"hello")))
    assert verdict.status is status, verdict
    if status is Status.INFECTED:
        assert verdict.signatures == ("Win.Test.EICAR_HDB-1",)


def test_oversized_message_is_refused_before_sending():
    verdict = asyncio.run(ClamdScanner("127.0.0.1", free_port(), max_size=10).scan(b"x" * 11))
    assert verdict.status is Status.ERROR and "exceeds" in verdict.reason
