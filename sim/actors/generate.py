"""What traffic actors draw from the run's seed: arrival times, message
sizes, recipient lists and the message text itself.

Arrivals follow a (possibly daily-varying) intensity ``lambda(t)``:
``rate`` scaled by the hour's weight over the mean weight, so the daily
average is ``rate``.  The next arrival is where the integrated intensity has
grown by an increment: an exponential draw with mean 1 for Poisson arrivals
(a non-homogeneous Poisson process by time change), exactly 1 for fixed
arrivals.  Nothing here reads the wall clock or global randomness.
"""
from __future__ import annotations

import base64
import email.utils
import io
import math
import random
import zipfile
from typing import Iterator

from sim.scenario.traffic import (CONTENT_KINDS, ChoiceCount, Content, FixedCount, FixedSize,
                                  LognormalSize, UniformCount, UniformSize)

HOUR = 3600.0
# Simulated time 0 is this Unix time when a Date header is written
# (2001-03-16, the date of the dial-up backup MX seed page).
SIM_EPOCH = 984700800.0


def arrival_times(rng: random.Random, rate: float, *, arrivals: str = "poisson",
                  daily_pattern: list[float] | None = None, start: float = 0.0,
                  stop: float = math.inf, count: int | None = None) -> Iterator[float]:
    """Yield arrival times in ``[start, stop)``, increasing, at most ``count``."""
    if rate <= 0 or (count is not None and count <= 0):
        return
    weights = None
    if daily_pattern:
        mean = sum(daily_pattern) / len(daily_pattern)
        weights = [w / mean for w in daily_pattern]
    t = start
    n = 0
    while True:
        step = rng.expovariate(1.0) if arrivals == "poisson" else 1.0
        t = _advance(t, step, rate, weights)
        if t >= stop:
            return
        yield t
        n += 1
        if count is not None and n >= count:
            return


def _advance(t: float, need: float, rate: float, weights: list[float] | None) -> float:
    """The time at which the integrated intensity from ``t`` reaches ``need``."""
    if weights is None:
        return t + need / rate
    for _ in range(24 * 366 * 10):   # at most ten years of hours: a safety net
        hour = int(t // HOUR)
        lam = rate * weights[hour % 24]
        end = (hour + 1) * HOUR
        room = lam * (end - t)
        if lam > 0 and room >= need:
            return t + need / lam
        need -= room
        t = end
    return math.inf


def draw_size(rng: random.Random, dist) -> int:
    """A message size in bytes from a size distribution of the scenario."""
    if isinstance(dist, FixedSize):
        return dist.value
    if isinstance(dist, UniformSize):
        return rng.randint(dist.min, dist.max)
    if isinstance(dist, LognormalSize):
        size = int(round(dist.median * math.exp(dist.sigma * rng.gauss(0.0, 1.0))))
        return min(max(size, 200), dist.max) if dist.max else max(size, 200)
    raise TypeError(f"unknown size distribution {dist!r}")


def draw_count(rng: random.Random, dist) -> int:
    """A recipient count from a count distribution of the scenario."""
    if isinstance(dist, FixedCount):
        return dist.value
    if isinstance(dist, UniformCount):
        return rng.randint(dist.min, dist.max)
    if isinstance(dist, ChoiceCount):
        return rng.choices(dist.values, weights=dist.weights, k=1)[0]
    raise TypeError(f"unknown count distribution {dist!r}")


def draw_recipients(rng: random.Random, pool: list[str], k: int) -> list[str]:
    """``k`` distinct recipients from ``pool``.

    An address containing ``{n}`` is a template that yields as many distinct
    addresses as needed (``user{n}@example.net`` -> user1@, user2@...); they
    are used after the plain addresses.  Without templates the count is
    capped at the pool's size.
    """
    plain = [a for a in pool if "{n}" not in a]
    templates = [a for a in pool if "{n}" in a]
    if k <= len(plain):
        return rng.sample(plain, k)
    out = list(plain)
    i = 1
    while templates and len(out) < k:
        out.append(templates[(i - 1) % len(templates)].replace("{n}", str(i)))
        i += 1
    return out


def schedule(rng: random.Random, spec, stop: float) -> list[float] | Iterator[float]:
    """When a sending actor's messages go out: :func:`arrival_times` with the
    actor's rate, arrival process, daily pattern (if it has one), start,
    stop and count."""
    return arrival_times(rng, spec.rate, arrivals=spec.arrivals,
                         daily_pattern=getattr(spec, "daily_pattern", None),
                         start=spec.start, stop=stop, count=spec.count)


def draw_envelope(rng: random.Random, spec, n: int = 1) -> tuple[str, list[str], int]:
    """``(mail_from, rcpts, size)`` of a sending actor's ``n``-th message,
    drawn in one fixed order (count, recipients, sender, size) so every
    actor kind spends its random stream the same way."""
    k = draw_count(rng, spec.recipients)
    rcpts = draw_recipients(rng, spec.to, k)
    mail_from = draw_one(rng, spec.from_, n)
    return mail_from, rcpts, draw_size(rng, spec.size)


def draw_one(rng: random.Random, pool: list[str], n: int = 1) -> str:
    """One address of ``pool``; a ``{n}`` template gives the ``n``-th
    (a spammer's ``deals{n}@...`` is a fresh sender for every message)."""
    return pool[rng.randrange(len(pool))].replace("{n}", str(n))


def build_message(*, mail_from: str, rcpts: list[str], size: int, msgid: str, t: float,
                  subject: str = "test message") -> bytes:
    """An RFC 5322 message of about ``size`` bytes (at least its headers)."""
    head = (f"From: <{mail_from or 'mailer-daemon@invalid'}>\r\n"
            f"To: {', '.join('<' + r + '>' for r in rcpts[:3])}"
            f"{' (and others)' if len(rcpts) > 3 else ''}\r\n"
            f"Subject: {subject}\r\n"
            f"Date: {email.utils.formatdate(SIM_EPOCH + t, usegmt=True)}\r\n"
            f"Message-ID: <{msgid}>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n")
    data = head.encode("ascii")
    line = b"x" * 76 + b"\r\n"
    missing = max(size - len(data), 0)
    body = line * (missing // len(line))
    rest = missing - len(body)
    if rest > 2:
        body += b"y" * (rest - 2) + b"\r\n"
    return data + body


# -- the content model (sim.scenario.traffic.Content) -----------------------

# The test strings every scanner knows (eicar.org; SpamAssassin's GTUBE),
# kept here in two halves so that this source file is no test virus itself.
_EICAR = (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-"
          b"ANTIVIRUS-TEST-FILE!$H+H*")
_GTUBE = (b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-"
          b"STANDARD-ANTI-UBE-TEST-EMAIL*C.34X")

#: Subject and text per kind: the built-in rules each one hits (points).
_TEXTS = {
    "ham": (None, "Minutes of the meeting are attached below.\r\n"),
    # DRUGS_ERECTILE 3.0 -> low
    "spam_low": ("cheap viagra", "Best prices on the web.\r\n"),
    # DRUGS_ERECTILE 3.0 + LOTS_OF_MONEY 2.5 = 5.5 -> med
    "spam_med": ("cheap viagra", "You are a lottery winner, claim it today.\r\n"),
    # + SUBJ_ALL_CAPS 2.0 + SUBJ_EXCLAIM 1.5 + BODY_EXCLAIM 1.0 = 10.0 -> high
    "spam_high": ("CHEAP VIAGRA NOW!!!",
                  "You are a lottery winner!!!!!!!!!! Claim it today!\r\n"),
}


def draw_content(rng: random.Random, content: Content | None) -> str:
    """The kind of the next message (no draw at all without a content model,
    so runs without one keep their random sequence)."""
    if content is None:
        return "ham"
    return rng.choices(CONTENT_KINDS, weights=content.weights(), k=1)[0]


def _zip(name: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo(name, date_time=(2001, 3, 16, 0, 0, 0)), data)
    return out.getvalue()


def _b64(data: bytes) -> str:
    text = base64.b64encode(data).decode("ascii")
    return "\r\n".join(text[i:i + 76] for i in range(0, len(text), 76))


def build_content(kind: str, rng: random.Random, content: Content | None, *, mail_from: str,
                  rcpts: list[str], size: int, msgid: str, t: float, subject: str) -> bytes:
    """A message of ``kind`` (one of ``CONTENT_KINDS``) of about ``size``
    bytes.  ``rng`` decides only what varies within a kind (an EICAR
    attachment plain base64 or zipped)."""
    if kind == "ham" and content is None:
        return build_message(mail_from=mail_from, rcpts=rcpts, size=size, msgid=msgid, t=t,
                             subject=subject)
    subj, text = _TEXTS.get(kind, (None, _TEXTS["ham"][1]))
    attachment: tuple[str, str, bytes] | None = None
    if kind == "gtube":
        text = "Test message.\r\n" + _GTUBE.decode("ascii") + "\r\n"
    elif kind == "eicar":
        if rng.random() < 0.5:
            attachment = ("invoice.com", "application/octet-stream", _EICAR)
        else:
            attachment = ("invoice.zip", "application/zip", _zip("invoice.com", _EICAR))
    elif kind == "large":
        n = max(content.large_size if content is not None else 1_000_000, 1)
        attachment = ("report.pdf", "application/pdf", (b"%PDF-1.4 " * (n // 9 + 1))[:n])
    head = (f"From: <{mail_from or 'mailer-daemon@invalid'}>\r\n"
            f"To: {', '.join('<' + r + '>' for r in rcpts[:3])}"
            f"{' (and others)' if len(rcpts) > 3 else ''}\r\n"
            f"Subject: {subj or subject}\r\n"
            f"Date: {email.utils.formatdate(SIM_EPOCH + t, usegmt=True)}\r\n"
            f"Message-ID: <{msgid}>\r\nMIME-Version: 1.0\r\n")
    pad = max(size - len(head) - len(text) - 200, 0)
    filler = ("x" * 76 + "\r\n") * (pad // 78)
    if attachment is None:
        return (head + "Content-Type: text/plain; charset=us-ascii\r\n\r\n" + text
                + filler).encode("ascii")
    name, ctype, data = attachment
    boundary = f"=_{msgid.partition('@')[0]}"
    return (head + f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
            f"--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
            f"{text}{filler}"
            f"--{boundary}\r\nContent-Type: {ctype}; name=\"{name}\"\r\n"
            f"Content-Transfer-Encoding: base64\r\n"
            f"Content-Disposition: attachment; filename=\"{name}\"\r\n\r\n"
            f"{_b64(data)}\r\n--{boundary}--\r\n").encode("ascii")
