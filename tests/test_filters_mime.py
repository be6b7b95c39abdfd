"""The MIME walk: decoding, nesting, archives, names, limits, malformed input."""
from __future__ import annotations

import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mta.filters.mime import DEFECT, UNSCANNED, WalkLimits, walk
from mta.filters.virus import EICAR
from helpers.filter_corpus import (TEXT, attachment, multipart, nested_rfc822, plain,
                                         zip_bomb, zip_of)


def by_path(result):
    return {p.path: p for p in result.parts}


def test_plain_message_is_one_leaf():
    result = walk(plain(b"hello\r\n"))
    assert [(p.path, p.content_type, p.data) for p in result.parts] == [
        ("1", "text/plain", b"hello\r\n")]
    assert result.problems == () and result.complete


@pytest.mark.parametrize("encoding", ["base64", "quoted-printable", "7bit", "8bit", "binary"])
def test_leaf_bodies_are_decoded(encoding):
    data = b"caf\xc3\xa9 = 100%\r\n" if encoding != "7bit" else b"plain = text\r\n"
    result = walk(multipart([TEXT, attachment("application/octet-stream", data,
                                              encoding=encoding)]))
    assert by_path(result)["1.2"].data == data


def test_encoding_names_in_any_case():
    part = (b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: BaSe64\r\n"
            b"\r\naGVsbG8=\r\n")
    assert by_path(walk(multipart([part])))["1.1"].data == b"hello"


def test_nested_multipart_and_rfc822_paths():
    inner = multipart([TEXT, attachment("application/octet-stream", b"deep",
                                        disposition='attachment; filename="d.bin"')],
                      boundary="=_in")
    result = walk(nested_rfc822(inner))
    paths = by_path(result)
    assert paths["1"].content_type == "multipart/mixed"
    assert paths["1.2"].content_type == "message/rfc822"
    assert paths["1.2"].filename == "fwd.eml"
    assert paths["1.2.1"].content_type == "multipart/mixed"
    assert paths["1.2.1.2"].data == b"deep" and paths["1.2.1.2"].filename == "d.bin"
    assert paths["1.2.1.2"].depth == 3


def test_zip_members_are_walked_recursively():
    inner = zip_of([("docs\\b.txt", b"inner text")])
    outer = zip_of([("dir/a.txt", b"alpha"), ("dir/", b""), ("inner.zip", inner)])
    result = walk(multipart([attachment("application/octet-stream", outer,
                                        disposition='attachment; filename="data.bin"')]))
    paths = by_path(result)
    assert paths["1.1!dir/a.txt"].data == b"alpha"
    assert paths["1.1!dir/a.txt"].filename == "a.txt" and paths["1.1!dir/a.txt"].in_archive
    assert paths["1.1!inner.zip!docs\\b.txt"].filename == "b.txt"
    assert paths["1.1!inner.zip!docs\\b.txt"].data == b"inner text"
    assert "1.1!dir/" not in paths        # directories are not parts
    assert result.complete


def test_zip_stored_and_deflated_alike():
    for method in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
        result = walk(multipart([attachment("application/zip", zip_of([("e", EICAR)], method))]))
        assert by_path(result)["1.1!e"].data == EICAR


def test_zip_bomb_is_a_defined_outcome():
    result = walk(zip_bomb(8 * 1024 * 1024))
    assert not result.complete
    assert [p.kind for p in result.unscanned] == ["zip-bomb"]
    # the member was never materialised beyond the ratio allowance
    assert all(len(p.data) <= 2 * 1024 * 1024 for p in result.parts)


def test_total_size_limit():
    limits = WalkLimits(max_total_bytes=10_000, max_ratio=1e9)
    result = walk(multipart([attachment("application/zip", zip_of([("a", b"x" * 20_000)]))]),
                  limits)
    assert [p.kind for p in result.unscanned] == ["limit-size"]


def test_member_count_limit():
    archive = zip_of([(f"f{i}", b"x") for i in range(50)])
    result = walk(multipart([attachment("application/zip", archive)]), WalkLimits(max_parts=10))
    assert len(result.parts) == 10
    assert [p.kind for p in result.unscanned] == ["limit-parts"]


def test_archive_depth_limit():
    data = b"core"
    for _ in range(4):
        data = zip_of([("z.zip", data)])
    result = walk(multipart([attachment("application/zip", data)]),
                  WalkLimits(max_archive_depth=2))
    assert [p.kind for p in result.unscanned] == ["limit-depth"]


def test_mime_depth_limit():
    msg = plain(b"leaf")
    for i in range(6):
        msg = nested_rfc822(msg).replace(b"=_b1", f"=_d{i}".encode())
    result = walk(msg, WalkLimits(max_depth=5))
    assert "limit-depth" in [p.kind for p in result.unscanned]


def test_encrypted_and_corrupt_archives_are_unscanned():
    good = zip_of([("a.txt", b"hello world " * 100)])
    encrypted = bytearray(good)
    encrypted[6] |= 0x1                      # local header flag: encrypted
    cd = good.rfind(b"PK\x01\x02")
    encrypted[cd + 8] |= 0x1                 # central directory flag too
    corrupt = good[:60] + b"\xff" * 40 + good[100:]
    truncated = good[:30]
    for data, kind in ((bytes(encrypted), "zip-encrypted"), (corrupt, "zip-corrupt"),
                       (truncated, "zip-corrupt")):
        result = walk(multipart([attachment("application/zip", data)]))
        assert [p.kind for p in result.unscanned] == [kind], kind


def test_malformed_mime_is_walked_as_far_as_it_parses():
    no_boundary = b"Content-Type: multipart/mixed\r\n\r\n" + EICAR
    result = walk(no_boundary)
    assert not result.complete
    assert EICAR in result.parts[0].data         # the text was still read
    missing_close = multipart([TEXT]).rsplit(b"--=_b1--", 1)[0]
    result = walk(missing_close)
    assert result.complete                       # read in full: a defect only
    assert [p.severity for p in result.problems] == [DEFECT]


def test_bad_base64_is_reported():
    result = walk(b"Content-Transfer-Encoding: base64\r\n\r\nQUJD\r\nQ")
    assert [(p.kind, p.severity) for p in result.unscanned] == [("bad-encoding", UNSCANNED)]
    padded = walk(b"Content-Transfer-Encoding: base64\r\n\r\nQUJDRA")
    assert padded.parts[0].data == b"ABCD" and padded.complete


def test_empty_message():
    result = walk(b"")
    assert result.parts == () and result.complete
    assert [p.kind for p in result.problems] == ["empty"]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_walk_never_raises_on_arbitrary_bytes(data):
    result = walk(data)
    assert isinstance(result.parts, tuple)


MIME_ATOMS = [b"--b\r\n", b"--b--\r\n", b"Content-Type: multipart/mixed; boundary=b\r\n",
              b"Content-Type: message/rfc822\r\n", b"Content-Transfer-Encoding: base64\r\n",
              b"Content-Transfer-Encoding: quoted-printable\r\n", b"\r\n", b"=\r\n", b"=ZZ",
              b"Content-Disposition: attachment; filename*0*=utf-8''%FF; filename*1=x\r\n",
              b"PK\x03\x04", b"QUJD", b"=?utf-8?B?###?=", b"\xff\xfe"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(MIME_ATOMS), max_size=40))
def test_walk_never_raises_on_mime_shaped_garbage(atoms):
    result = walk(b"".join(atoms))
    for part in result.parts:
        assert isinstance(part.data, bytes)


def nested_multiparts(levels: int) -> bytes:
    msg = b""
    for i in range(levels):
        msg += f"Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n".encode()
    msg += b"Content-Type: text/plain\r\n\r\nleaf\r\n"
    for i in reversed(range(levels)):
        msg += f"--b{i}--\r\n".encode()
    return msg


@pytest.mark.parametrize("levels", [50, 3000])
def test_deep_nesting_is_a_limit_not_a_crash(levels):
    result = walk(nested_multiparts(levels))
    assert [p.kind for p in result.unscanned] == ["limit-depth"]
