"""Attachment file names as a mail client would show them.

A part's name can come from ``Content-Disposition: ...; filename=`` or from
``Content-Type: ...; name=``, in any letter case, plain, quoted, in RFC 2231
form (``filename*=utf-8''%E2%82%AC.exe``, continuations ``filename*0=`` ...,
a charset and a language) or as RFC 2047 encoded words
(``"=?utf-8?B?...?="``, which RFC 2047 forbids inside parameters but every
big client writes and reads anyway).  This module turns each of those into
one ``str`` and says when it had to guess.

Decoding never raises: an unknown charset or bytes that are invalid in the
declared one fall back to Latin-1, which maps every byte, so an ASCII
extension such as ``.exe`` is always visible to the attachment rules even
when the rest of the name is garbage (the name is then flagged
``undecodable``).
"""
from __future__ import annotations

import email.header
import email.message
from dataclasses import dataclass

# Longest name we keep (longer names are kept by their tail, which holds
# the extension); Windows' own limit is 255 UTF-16 units per component.
MAX_NAME = 1024


@dataclass(frozen=True, slots=True)
class PartName:
    """One name found on a part: the decoded ``value``, the header it came
    from (``content-disposition`` or ``content-type``), and whether decoding
    had to fall back (``undecodable``) or cut an oversized name (``truncated``)."""

    value: str
    source: str
    undecodable: bool = False
    truncated: bool = False


def _bytes_to_text(raw: bytes, charset: str | None) -> tuple[str, bool]:
    """Decode ``raw`` in ``charset``; fall back to Latin-1 (flagged)."""
    if charset:
        try:
            return raw.decode(charset), False
        except (LookupError, UnicodeDecodeError):
            pass
    try:
        return raw.decode("ascii"), False
    except UnicodeDecodeError:
        return raw.decode("latin-1"), True


def _decode_2231(value: tuple) -> tuple[str, bool]:
    """An RFC 2231 ``(charset, language, text)`` triple from the email package.

    The package percent-decodes the text into a Latin-1 ``str`` (one char per
    byte); get the bytes back and decode them in the declared charset.
    """
    charset, _language, text = value
    raw = text.encode("latin-1", "surrogateescape") if isinstance(text, str) else bytes(text)
    return _bytes_to_text(raw, charset or None)


def _decode_2047(text: str) -> tuple[str, bool]:
    """Decode RFC 2047 encoded words anywhere in ``text``."""
    if "=?" not in text:
        return text, False
    try:
        chunks = email.header.decode_header(text)
    except Exception:  # a broken encoded word: keep the text as it stands
        return text, True
    out: list[str] = []
    guessed = False
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            out.append(chunk)
            continue
        piece, bad = _bytes_to_text(chunk, charset)
        out.append(piece)
        guessed = guessed or bad
    return "".join(out), guessed


def _from_surrogates(text: str) -> tuple[str, bool]:
    """Header text from a bytes parse carries raw 8-bit bytes as surrogates:
    take them as UTF-8 (what clients send), else Latin-1."""
    try:
        text.encode("utf-8")
        return text, False
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogateescape")
        try:
            return raw.decode("utf-8"), False
        except UnicodeDecodeError:
            return raw.decode("latin-1"), True


def decode_param(value: object) -> tuple[str, bool]:
    """Turn a parameter value as ``Message.get_param`` returns it into text.

    Returns ``(text, undecodable)``.  Never raises.
    """
    try:
        if isinstance(value, tuple):
            text, bad = _decode_2231(value)
        else:
            text, bad = _from_surrogates(str(value))
        decoded, bad2 = _decode_2047(text)
        return decoded, bad or bad2
    except Exception:  # defensive: a name is never worth a crash
        return repr(value)[:MAX_NAME], True


def _eight_bit_view(msg: email.message.Message,
                    header: str) -> tuple[email.message.Message, bool]:
    """The header as text when it holds raw 8-bit bytes.

    The compat32 parser hands such a header out as a ``Header`` in the
    ``unknown-8bit`` charset whose ``str`` is U+FFFD replacement characters;
    rebuild it from its bytes (UTF-8, else Latin-1) so the name survives.
    """
    value = msg.get(header)
    if not isinstance(value, email.header.Header):
        return msg, False
    raw = b"".join(chunk if isinstance(chunk, bytes) else chunk.encode("ascii", "replace")
                   for chunk, _cs in email.header.decode_header(value))
    text, bad = _bytes_to_text(raw, "utf-8")
    view = email.message.Message()
    view[header] = text
    return view, bad


def part_names(msg: email.message.Message) -> tuple[PartName, ...]:
    """Every distinct name on one part, ``filename=`` first, then ``name=``."""
    found: list[PartName] = []
    seen: set[str] = set()
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        try:
            view, eight_bit_guess = _eight_bit_view(msg, header)
            raw = view.get_param(param, header=header)
        except Exception:
            continue
        if raw is None or raw == "":
            continue
        text, bad = decode_param(raw)
        bad = bad or eight_bit_guess
        text = text.replace("\r", "").replace("\n", "")
        truncated = len(text) > MAX_NAME
        if truncated:
            text = text[-MAX_NAME:]
        if text and text not in seen:
            seen.add(text)
            found.append(PartName(value=text, source=header, undecodable=bad,
                                  truncated=truncated))
    return tuple(found)
