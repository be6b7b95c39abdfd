"""DataReader takes buffered lines in one go: it must read exactly what the
line-by-line reading (one ``readuntil`` per line) read, however the bytes
arrive, and leave the same bytes behind for the next command."""
from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from mta.smtp.data import DataReader

LINE_LIMIT = 64          # the StreamReader's limit (line_length_limit in the server)


async def _line_by_line(reader: asyncio.StreamReader, limit: int | None) -> tuple:
    """The reference: one readuntil per line (what DataReader did before)."""
    size, peak, overflow, kept, line_start = 0, 0, False, bytearray(), True
    while True:
        try:
            chunk, complete = await reader.readuntil(b"\r\n"), True
        except asyncio.LimitOverrunError as exc:
            chunk, complete = await reader.read(exc.consumed), False
        if line_start and complete and chunk == b".\r\n":
            break
        if line_start and chunk.startswith(b"."):
            chunk = chunk[1:]
        size += len(chunk)
        if kept is not None:
            if limit and size > limit:
                overflow, kept = True, None
            else:
                kept += chunk
                peak = max(peak, len(kept))
        line_start = complete
    return (bytes(kept) if kept is not None else None), size, peak, overflow


async def _fast(reader: asyncio.StreamReader, limit: int | None) -> tuple:
    progress: list[int] = []
    r = DataReader(reader, limit, on_progress=lambda: progress.append(1))
    body = await r.read()
    assert progress, "the idle timer was never restarted"
    return body, r.size, r.peak, r.overflow


async def _run(read, pieces: list[bytes], limit: int | None) -> tuple:
    reader = asyncio.StreamReader(limit=LINE_LIMIT)

    async def feed() -> None:
        for p in pieces:
            reader.feed_data(p)
            await asyncio.sleep(0)        # let the reader take what is there
        reader.feed_eof()

    feeder = asyncio.ensure_future(feed())
    result = await read(reader, limit)
    await feeder
    return result, await reader.read()    # what is left for the next command


LINES = st.lists(st.sampled_from([
    b"hello\r\n", b".\r\n", b"..\r\n", b".dot first\r\n", b"\r\n", b"bare\nlf\r\n",
    b"x" * 100 + b"\r\n", b"." + b"y" * 70 + b"\r\n", b"cr\ronly\r\n", b"\r\n.\r\n",
]), max_size=30)


@settings(max_examples=300, deadline=None)
@given(lines=LINES, cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=8),
       limit=st.sampled_from([None, 0, 50, 100, 200, 1000]))
def test_buffered_lines_read_exactly_as_line_by_line(lines, cuts, limit):
    stream = b"".join(lines) + b".\r\nQUIT\r\nNOOP\r\n"
    points = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    pieces = [stream[a:b] for a, b in zip(points, points[1:]) if b > a]
    expected = asyncio.run(_run(_line_by_line, pieces, limit))
    assert asyncio.run(_run(_fast, pieces, limit)) == expected


def test_one_arrival_many_lines_unstuffed_and_the_next_command_left():
    body = b"a\r\n..b\r\n.c\r\n" + b"z" * 90 + b"\r\n"
    (result, left) = asyncio.run(_run(_fast, [body + b".\r\nQUIT\r\n"], None))
    assert result == (b"a\r\n.b\r\nc\r\n" + b"z" * 90 + b"\r\n", 102, 102, False)
    assert left == b"QUIT\r\n"


def test_over_the_limit_keeps_nothing_and_still_reads_to_the_dot():
    body = b"".join(b"line %03d\r\n" % i for i in range(40))
    (result, left) = asyncio.run(_run(_fast, [body + b".\r\nRSET\r\n"], 100))
    kept, size, peak, overflow = result
    assert kept is None and overflow and size == len(body) and peak <= 100
    assert left == b"RSET\r\n"


def test_a_line_longer_than_the_reader_limit_is_read_in_pieces_as_before():
    # Over the reader's limit, readuntil hands the line over in two pieces;
    # the size limit falls between them, so the first piece was held (peak).
    stream = [b"a\r\n" + b"x" * 100 + b"\r\n.\r\n"]
    expected = asyncio.run(_run(_line_by_line, stream, 103))
    assert expected[0][2:] == (103, True)
    assert asyncio.run(_run(_fast, stream, 103)) == expected


def test_a_buffer_many_times_the_reader_limit_reads_as_line_by_line():
    # Runs are taken within the reader's limit: short lines on both sides of
    # long ones (over the limit), dot lines among them, one arrival.
    lines = ([b"short %d\r\n" % i for i in range(30)] + [b"y" * 150 + b"\r\n", b"..dot\r\n"]
             + [b"z" * 63 + b"\r\n"] * 5 + [b"w" * 64 + b"\r\n", b"after\r\n"] * 3)
    stream = [b"first\r\n" + b"y." + b"y" * 150 + b"\r\n" + b"".join(lines) + b".\r\nQUIT\r\n"]
    for limit in (None, 500, 900):
        expected = asyncio.run(_run(_line_by_line, stream, limit))
        assert asyncio.run(_run(_fast, stream, limit)) == expected
