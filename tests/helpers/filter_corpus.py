"""Messages for the content-filter tests and benchmarks, built from code.

Each builder returns the bytes a client would send (CRLF line endings);
``VIRUS_CORPUS`` and ``SPAM_CORPUS`` name the cases with what every scanner
must say about them, so the built-in scanners and the real daemons are held
to the same table.
"""
from __future__ import annotations

import base64
import io
import quopri
import zipfile

from mta.filters.spam import GTUBE
from mta.filters.virus import EICAR

HEAD = (b"From: Alice <alice@example.org>\r\nTo: bob@example.com\r\n"
        b"Date: Tue, 01 Dec 2026 09:00:00 +0000\r\n")


def plain(body: bytes, subject: bytes = b"Lunch on Tuesday",
          msgid: bytes | None = b"<abc123@example.org>", extra: bytes = b"") -> bytes:
    mid = b"Message-ID: " + msgid + b"\r\n" if msgid is not None else b""
    return (HEAD + b"Subject: " + subject + b"\r\n" + mid + extra +
            b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n" + body)


def zip_of(members: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return out.getvalue()


def attachment(ctype: str, data: bytes, *, encoding: str = "base64",
               disposition: str = 'attachment; filename="file.bin"') -> bytes:
    if encoding == "base64":
        body = base64.encodebytes(data).replace(b"\n", b"\r\n")
    elif encoding == "quoted-printable":
        # line breaks of the text stay line breaks (RFC 2045 §6.7 rule 4)
        body = b"\r\n".join(quopri.encodestring(line).replace(b"\n", b"\r\n")
                             for line in data.split(b"\r\n"))
    else:
        body = data
    return (f"Content-Type: {ctype}\r\nContent-Disposition: {disposition}\r\n"
            f"Content-Transfer-Encoding: {encoding}\r\n\r\n").encode() + body


def multipart(parts: list[bytes], subtype: str = "mixed", boundary: str = "=_b1",
              headers: bytes = HEAD + b"Subject: report\r\nMessage-ID: <m1@example.org>\r\n"
              ) -> bytes:
    b = boundary.encode()
    out = headers + (b"MIME-Version: 1.0\r\nContent-Type: multipart/" + subtype.encode() +
                     b'; boundary="' + b + b'"\r\n\r\nThis is a MIME message.\r\n')
    for part in parts:
        out += b"--" + b + b"\r\n" + part + b"\r\n"
    return out + b"--" + b + b"--\r\n"


TEXT = b"Content-Type: text/plain; charset=us-ascii\r\n\r\nSee the attachment.\r\n"


def nested_rfc822(inner: bytes) -> bytes:
    return multipart([TEXT, b"Content-Type: message/rfc822\r\n"
                            b'Content-Disposition: attachment; filename="fwd.eml"\r\n\r\n' + inner])


def clean_2k() -> bytes:
    line = b"The quarterly figures are attached; call me if anything looks odd.\r\n"
    return plain(line * (2048 // len(line)))


def attachment_100k() -> bytes:
    data = bytes((i * 7919) % 251 for i in range(100 * 1024))
    return multipart([TEXT, attachment("application/pdf", data,
                                       disposition='attachment; filename="figures.pdf"')])


def eicar_zip() -> bytes:
    return multipart([TEXT, attachment("application/zip", zip_of([("eicar.com", EICAR)]),
                                       disposition='attachment; filename="eicar.zip"')])


def zip_bomb(size: int = 30 * 1024 * 1024) -> bytes:
    """One member of ``size`` zero bytes: about 1000:1 deflated."""
    return multipart([TEXT, attachment("application/zip", zip_of([("zeros.bin", b"\0" * size)]),
                                       disposition='attachment; filename="z.zip"')])


# name -> (message, infected?)
VIRUS_CORPUS: dict[str, tuple[bytes, bool]] = {
    "ham-plain": (clean_2k(), False),
    "ham-100k-attachment": (attachment_100k(), False),
    "ham-zip": (multipart([TEXT, attachment("application/zip", zip_of([("a.txt", b"hello")]))]),
                False),
    "ham-nested": (nested_rfc822(plain(b"forwarded text\r\n")), False),
    "ham-empty": (b"", False),
    "eicar-plain-body": (plain(EICAR + b"\r\n"), True),
    "eicar-base64": (multipart([TEXT, attachment("application/octet-stream", EICAR)]), True),
    "eicar-qp": (multipart([TEXT, attachment("text/plain", EICAR, encoding="quoted-printable")]),
                 True),
    "eicar-zip": (eicar_zip(), True),
    "eicar-zip-in-zip": (multipart([TEXT, attachment(
        "application/zip", zip_of([("inner.zip", zip_of([("e.com", EICAR)]))]))]), True),
    "eicar-nested-rfc822": (nested_rfc822(multipart([TEXT, attachment(
        "application/octet-stream", EICAR)], boundary="=_inner")), True),
    "eicar-nested-multipart": (multipart([multipart(
        [TEXT, attachment("application/octet-stream", EICAR)], boundary="=_b2",
        headers=b"")], boundary="=_b1"), True),
}

HAM = plain(b"Hi Bob,\r\n\r\nare we still on for lunch on Tuesday?\r\n\r\nAlice\r\n")
RULE_SPAM = (HEAD + b"Subject: CHEAP VIAGRA NOW!!!\r\nMessage-ID: <bogus>\r\n"
             b"MIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n"
             b"<html><body><b>BUY VIAGRA NOW!!!</b> Make a million dollars!</body></html>\r\n")
GTUBE_MAIL = plain(b"Hi Bob,\r\n\r\n" + GTUBE + b"\r\n")

# name -> (message, level with the default thresholds for both scorers)
SPAM_CORPUS: dict[str, tuple[bytes, str]] = {
    "ham": (HAM, "none"),
    "gtube": (GTUBE_MAIL, "high"),
}
