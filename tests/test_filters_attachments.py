"""Blocked attachments: every way a name can be written, and bad names."""
from __future__ import annotations

import base64
import urllib.parse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mta.filters.attachments import (DEFAULT_BLOCKED, SEED_BLOCKED, AttachmentRules,
                                     find_blocked, normalise)
from mta.filters.mime import walk
from helpers.filter_corpus import TEXT, attachment, multipart, nested_rfc822, zip_of


def message_with(disposition: str = "", ctype: str = "application/octet-stream") -> bytes:
    head = f"Content-Type: {ctype}\r\n"
    if disposition:
        head += f"Content-Disposition: {disposition}\r\n"
    part = (head + "Content-Transfer-Encoding: base64\r\n\r\nTVo=\r\n").encode("utf-8")
    return multipart([TEXT, part])


def blocked(message: bytes, rules: AttachmentRules = AttachmentRules()):
    return find_blocked(walk(message), rules)


def test_seed_list_and_the_careful_additions():
    assert SEED_BLOCKED == (".pif", ".bat", ".exe", ".scr")
    assert set(DEFAULT_BLOCKED) == set(SEED_BLOCKED) | {".com", ".cmd", ".vbs", ".js", ".jar"}


@pytest.mark.parametrize("header", [
    'attachment; filename="setup.exe"',
    "attachment; FILENAME=SETUP.EXE",
    'Attachment; Filename="setup.Exe. . "',                         # trailing dots/spaces
    'attachment; filename="report.txt.exe"',                        # double extension
    'attachment; filename="C:\\\\Temp\\\\run.bat"',                 # a path
    'attachment; filename="run.bat::$DATA"',                        # NTFS stream
    "attachment; filename*=utf-8''%E2%82%AC%20invoice.scr",          # RFC 2231
    "attachment; filename*0=\"in\"; filename*1=\"voice.pif\"",      # continuations
    "attachment; filename*0*=iso-8859-1''caf%E9; filename*1=\".cmd\"",
    'attachment; filename="=?utf-8?B?' + base64.b64encode("Rechnung.vbs".encode()).decode()
    + '?="',                                                        # RFC 2047
    'attachment; filename="=?ISO-8859-1?Q?r=E9sum=E9.js?="',
])
def test_blocked_names_in_content_disposition(header):
    hit = blocked(message_with(header))
    assert hit is not None, header
    assert hit.where == "1.2"


def test_name_in_content_type_any_case():
    hit = blocked(message_with(ctype='application/x-msdownload; NAME="tool.JAR"'))
    assert hit.name == "tool.JAR" and hit.extension == ".jar"


def test_either_name_counts_when_they_differ():
    hit = blocked(message_with('attachment; filename="photo.jpg"',
                               ctype='application/octet-stream; name="photo.exe"'))
    assert hit.extension == ".exe"


@pytest.mark.parametrize("name", ["setup.exe.txt", "notes.txt", "exe", "archive.exez",
                                  "my.exe folder/readme.md", "a. exe"])
def test_allowed_names(name):
    assert blocked(message_with(f'attachment; filename="{name}"')) is None


def test_double_extension_is_flagged():
    hit = blocked(message_with('attachment; filename="report.txt.exe"'))
    assert hit.double_extension and hit.name == "report.txt.exe"
    assert str(hit.reply) == ('550 5.7.1 Attachment "report.txt.exe" refused: '
                              '.exe files are not permitted')


def test_names_inside_zip_archives_at_any_depth():
    inner = zip_of([("payload/Invoice.PDF.exe", b"MZ")])
    outer = zip_of([("readme.txt", b"hi"), ("inner.zip", inner)])
    hit = blocked(multipart([TEXT, attachment("application/zip", outer,
                                              disposition='attachment; filename="a.zip"')]))
    assert hit.name == "Invoice.PDF.exe" and hit.in_archive
    assert hit.where == "1.2!inner.zip!payload/Invoice.PDF.exe"


def test_names_inside_attached_messages():
    inner = multipart([TEXT, attachment("application/octet-stream", b"MZ",
                                        disposition='attachment; filename="x.scr"')],
                      boundary="=_in")
    assert blocked(nested_rfc822(inner)).where == "1.2.1.2"


def test_first_blocked_file_in_walk_order():
    parts = [attachment("application/octet-stream", b"MZ",
                        disposition=f'attachment; filename="{n}"') for n in ("a.txt", "b.bat",
                                                                              "c.exe")]
    assert blocked(multipart(parts)).name == "b.bat"


def test_configurable_list():
    rules = AttachmentRules(blocked=("DOCM", ".xlsm"))
    assert rules.blocked == (".docm", ".xlsm")
    assert blocked(message_with('attachment; filename="a.exe"'), rules) is None
    assert blocked(message_with('attachment; filename="m.DocM"'), rules).extension == ".docm"
    with pytest.raises(ValueError):
        AttachmentRules(blocked=(".",))


def test_empty_names_block_nothing():
    assert blocked(message_with('attachment; filename=""')) is None
    assert blocked(message_with("attachment; filename")) is None
    assert blocked(message_with('attachment; filename="   "')) is None


def test_huge_name_judged_by_its_tail_and_quoted_short():
    name = "a" * 100_000 + ".exe"
    hit = blocked(message_with(f'attachment; filename="{name}"'))
    assert hit.extension == ".exe"
    reply = str(hit.reply)
    assert len(reply) < 512 and reply.startswith('550 5.7.1 Attachment "...aaa')


def test_undecodable_names_still_show_their_extension():
    for header in ("attachment; filename*=x-unknown-charset''%FF%FE.exe",
                   "attachment; filename*=utf-8''%FF%FE.exe",
                   'attachment; filename="=?utf-8?B?not*base64?=.exe"'):
        hit = blocked(message_with(header))
        assert hit is not None and hit.extension == ".exe", header
    raw = multipart([TEXT, b'Content-Type: application/octet-stream\r\nContent-Disposition: '
                           b'attachment; filename="\xff\xfe\xfd.com"\r\n\r\nMZ'])
    hit = blocked(raw)
    assert hit.extension == ".com" and hit.undecodable


def test_nul_truncates_the_name_as_windows_would():
    hit = blocked(message_with("attachment; filename*=utf-8''evil.exe%00.txt"))
    assert hit is not None and hit.extension == ".exe"


def test_reply_text_is_safe():
    hit = blocked(message_with("attachment; filename*=utf-8''a%0D%0ARCPT%20TO%3A%22x%22.exe"))
    reply = str(hit.reply)
    assert "\r" not in reply and "\n" not in reply and reply.count('"') == 2


# -- properties -------------------------------------------------------------

STEMS = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters='\\/:\0"'),
                min_size=1, max_size=40).filter(lambda s: s.strip(". \t") == s and s.strip())
EXTS = st.sampled_from(DEFAULT_BLOCKED)
TRAIL = st.text(st.sampled_from(". "), max_size=4)


def random_case(text: str, flips: list[bool]) -> str:
    return "".join(c.upper() if f else c for c, f in zip(text, flips + [False] * len(text)))


def encodings(name: str) -> list[str]:
    quoted = urllib.parse.quote(name.encode("utf-8"), safe="")
    b64 = base64.b64encode(name.encode("utf-8")).decode()
    return [f"attachment; filename*=utf-8''{quoted}",
            f'attachment; filename="=?utf-8?B?{b64}?="',
            "attachment; " + "; ".join(f"filename*{i}*=" + ("utf-8''" if i == 0 else "") +
                                       urllib.parse.quote(chunk.encode("utf-8"), safe="")
                                       for i, chunk in enumerate(
                                           [name[j:j + 7] for j in range(0, len(name), 7)]))]


@settings(max_examples=150, deadline=None)
@given(STEMS, EXTS, TRAIL, st.lists(st.booleans(), max_size=8), st.integers(0, 2))
def test_every_encoding_of_a_blocked_name_is_found(stem, ext, trail, flips, which):
    name = stem + random_case(ext, flips) + trail
    hit = blocked(message_with(encodings(name)[which]))
    assert hit is not None, name
    assert hit.extension == ext
    assert hit.name == name.replace("\r", "").replace("\n", "")   # folding is not a name


@settings(max_examples=150, deadline=None)
@given(STEMS, st.sampled_from([".txt", ".pdf", ".docx", ".png", ".exe.txt", ".jsx"]),
       st.integers(0, 2))
def test_allowed_extensions_pass_in_every_encoding(stem, ext, which):
    name = stem + ext
    if any(normalise(name).endswith(b) for b in DEFAULT_BLOCKED):
        return   # the stem itself ended in a blocked extension plus trimmed text
    assert blocked(message_with(encodings(name)[which])) is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_name_text_never_raises(name):
    safe = name.replace("\r", "").replace("\n", "").replace('"', "")
    hit = blocked(message_with(f'attachment; filename="{safe}"'))
    if hit is not None:
        assert str(hit.reply).startswith("550 5.7.1 ")
