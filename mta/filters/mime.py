"""The MIME walk: every part of a message, decoded, as a scanner sees it.

``walk(message_bytes)`` parses the message and yields a flat tuple of
:class:`Part` s: every node of the MIME tree (multiparts, attached
``message/rfc822`` messages, leaves) with each leaf's body decoded from its
Content-Transfer-Encoding (base64, quoted-printable, uuencode, 7bit, 8bit,
binary; unknown encodings are kept as sent), and the members of zip
archives found in any leaf (recognised by their magic bytes, not by their
name, as ClamAV does), recursively.

Hostile input is a defined outcome, never an exception out of the walk:

* Malformed MIME is walked as far as it parses; what the parser noticed is
  reported as a :class:`Problem`.  A problem is ``unscanned`` when some
  content could not be inspected (a multipart whose boundary never appears,
  base64 that cannot be decoded, a corrupt or encrypted archive, a limit
  reached), otherwise it is a ``defect`` (irregular but fully read).
* Zip bombs meet :class:`WalkLimits`: nesting depth, member count, total
  decoded size, and compression ratio.  Members are inflated in bounded
  chunks, so a member that lies about its size costs at most the budget
  left, never a hang or the machine's memory.

Parsing uses the standard library's compat32 policy, whose header access
does not raise on broken headers.
"""
from __future__ import annotations

import email
import email.errors
import email.message
import email.policy
import io
import zipfile
from dataclasses import dataclass, field

from mta.filters.names import PartName, part_names

DEFECT = "defect"        # irregular, but every byte was inspected
UNSCANNED = "unscanned"  # some content could not be inspected

# Parser defects after which part of the content was not decoded.
_LOSSY_DEFECTS = (
    email.errors.NoBoundaryInMultipartDefect,
    email.errors.StartBoundaryNotFoundDefect,
    email.errors.InvalidBase64LengthDefect,
)

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class WalkLimits:
    """Bounds of one walk.  The defaults sit below clamd's (MaxRecursion 17,
    MaxFiles 10000, MaxScanSize 400 MB) because a mail filter can tempfail
    and let the sender retry, where a file scanner must decide at once."""

    max_depth: int = 20                  # MIME nesting (multipart, message/rfc822)
    max_archive_depth: int = 4           # zip inside zip inside ...
    max_parts: int = 1000                # nodes in total, archive members included
    max_total_bytes: int = 64 * 1024 * 1024   # decoded bytes over the whole walk
    max_ratio: float = 100.0             # uncompressed / compressed, per member ...
    ratio_floor: int = 1024 * 1024       # ... once a member is past this size


DEFAULT_LIMITS = WalkLimits()


@dataclass(frozen=True, slots=True)
class Problem:
    """Something the walk could not take at face value.

    ``kind`` is a short stable label (``malformed-mime``, ``bad-encoding``,
    ``zip-corrupt``, ``zip-encrypted``, ``zip-bomb``, ``limit-depth``,
    ``limit-parts``, ``limit-size``, ``internal``); ``where`` is the part's
    path; ``severity`` is :data:`DEFECT` or :data:`UNSCANNED`.
    """

    kind: str
    where: str
    detail: str
    severity: str = DEFECT


@dataclass(frozen=True, slots=True)
class Part:
    """One node of the walk.

    ``path`` numbers MIME children like IMAP (``1``, ``2.1``) and names archive
    members after a ``!`` (``2!docs/a.exe``).  ``data`` is the decoded body of a
    leaf or archive member (empty for multipart and message nodes);
    ``names`` are its file names, Content-Disposition first.
    """

    path: str
    content_type: str
    data: bytes
    names: tuple[PartName, ...] = ()
    in_archive: bool = False
    depth: int = 0

    @property
    def filename(self) -> str | None:
        """The name a client would show: ``filename=`` before ``name=``."""
        return self.names[0].value if self.names else None


@dataclass(frozen=True, slots=True)
class MimeWalk:
    """The result of :func:`walk`: the parts, and what could not be parsed."""

    parts: tuple[Part, ...]
    problems: tuple[Problem, ...]

    @property
    def complete(self) -> bool:
        """True when every byte of content was inspected (no ``unscanned``)."""
        return all(p.severity != UNSCANNED for p in self.problems)

    @property
    def unscanned(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == UNSCANNED)


@dataclass
class _State:
    limits: WalkLimits
    parts: list[Part] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    total: int = 0
    stopped: bool = False   # the part count was reached: stop adding parts

    def problem(self, kind: str, where: str, detail: str, severity: str = DEFECT) -> None:
        self.problems.append(Problem(kind=kind, where=where, detail=detail, severity=severity))

    def add(self, part: Part) -> bool:
        """Record ``part``; False once the part budget is spent."""
        if self.stopped:
            return False
        if len(self.parts) >= self.limits.max_parts:
            self.stopped = True
            self.problem("limit-parts", part.path,
                         f"more than {self.limits.max_parts} parts", UNSCANNED)
            return False
        self.parts.append(part)
        return True


def parse(message: bytes) -> email.message.Message:
    """The message parsed with the compat32 policy (never raises on content)."""
    return email.message_from_bytes(message, policy=email.policy.compat32)


def walk(message: bytes, limits: WalkLimits = DEFAULT_LIMITS) -> MimeWalk:
    """Walk every part of ``message``; see the module docstring."""
    state = _State(limits=limits)
    if not message:
        state.problem("empty", "1", "0-byte message")
        return MimeWalk(parts=(), problems=tuple(state.problems))
    try:
        root = parse(message)
        _walk_node(root, "1", 0, state)
    except RecursionError:
        state.problem("limit-depth", "1", "nesting too deep to parse", UNSCANNED)
    except Exception as exc:  # the last line of defence: report, never raise
        state.problem("internal", "1", f"{type(exc).__name__}: {exc}"[:200], UNSCANNED)
    return MimeWalk(parts=tuple(state.parts), problems=tuple(state.problems))


def _content_type(node: email.message.Message) -> str:
    try:
        return node.get_content_type()
    except Exception:
        return "application/octet-stream"


def _record_defects(node: email.message.Message, path: str, state: _State) -> None:
    for defect in getattr(node, "defects", ()):
        lossy = isinstance(defect, _LOSSY_DEFECTS)
        kind = "bad-encoding" if "Base64" in type(defect).__name__ else "malformed-mime"
        state.problem(kind, path, type(defect).__name__, UNSCANNED if lossy else DEFECT)


def _walk_node(node: email.message.Message, path: str, depth: int, state: _State) -> None:
    if depth > state.limits.max_depth:
        state.problem("limit-depth", path, f"MIME nesting deeper than {state.limits.max_depth}",
                      UNSCANNED)
        return
    ctype = _content_type(node)
    names = part_names(node)
    payload = node.get_payload()
    if node.is_multipart() and isinstance(payload, list):
        if not state.add(Part(path=path, content_type=ctype, data=b"", names=names, depth=depth)):
            return
        _record_defects(node, path, state)
        # message/rfc822 has one child, the attached message (path.1).
        children = [c for c in payload if isinstance(c, email.message.Message)]
        for index, child in enumerate(children, start=1):
            _walk_node(child, f"{path}.{index}", depth + 1, state)
        return
    data = _decode_leaf(node, path, state)
    if not state.add(Part(path=path, content_type=ctype, data=data, names=names, depth=depth)):
        return
    _record_defects(node, path, state)
    if data[:4] in _ZIP_MAGIC:
        _walk_zip(data, path, depth, 1, state)


def _decode_leaf(node: email.message.Message, path: str, state: _State) -> bytes:
    try:
        data = node.get_payload(decode=True)
    except Exception as exc:
        state.problem("bad-encoding", path, f"{type(exc).__name__}: {exc}"[:200], UNSCANNED)
        raw = node.get_payload()
        data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""
    if data is None:
        data = b""
    return _charge(bytes(data), path, state)


def _charge(data: bytes, where: str, state: _State) -> bytes:
    """Count ``data`` against the size budget; cut it at the budget."""
    room = state.limits.max_total_bytes - state.total
    if len(data) > room:
        state.problem("limit-size", where,
                      f"decoded content beyond {state.limits.max_total_bytes} bytes", UNSCANNED)
        data = data[:max(room, 0)]
    state.total += len(data)
    return data


def _walk_zip(data: bytes, path: str, depth: int, level: int, state: _State) -> None:
    if level > state.limits.max_archive_depth:
        state.problem("limit-depth", path,
                      f"archives nested deeper than {state.limits.max_archive_depth}", UNSCANNED)
        return
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except Exception as exc:
        state.problem("zip-corrupt", path, f"{type(exc).__name__}: {exc}"[:200], UNSCANNED)
        return
    for info in members:
        if state.stopped:
            return
        if info.is_dir():
            continue
        where = f"{path}!{info.filename}"
        if info.flag_bits & 0x1:
            state.problem("zip-encrypted", where, "encrypted member", UNSCANNED)
            continue
        content = _inflate(archive, info, where, state)
        if content is None:
            continue
        name = PartName(value=info.filename.replace("\\", "/").rsplit("/", 1)[-1] or info.filename,
                        source="zip")
        part = Part(path=where, content_type="application/octet-stream", data=content,
                    names=(name,), in_archive=True, depth=depth + level)
        if not state.add(part):
            return
        if content[:4] in _ZIP_MAGIC:
            _walk_zip(content, where, depth, level + 1, state)


def _inflate(archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str,
             state: _State) -> bytes | None:
    """Read one member in bounded chunks; None (with a problem) if it cannot
    or must not be read in full."""
    limits = state.limits
    room = limits.max_total_bytes - state.total
    # What the ratio limit allows for this member, from its compressed size.
    by_ratio = max(limits.ratio_floor, int(limits.max_ratio * max(info.compress_size, 1)))
    out = bytearray()
    try:
        with archive.open(info) as member:
            while True:
                chunk = member.read(_CHUNK)
                if not chunk:
                    break
                out += chunk
                if len(out) > by_ratio:
                    state.problem("zip-bomb", where,
                                  f"compression ratio above {limits.max_ratio:g}:1", UNSCANNED)
                    return None
                if len(out) > room:
                    state.problem("limit-size", where,
                                  f"decoded content beyond {limits.max_total_bytes} bytes",
                                  UNSCANNED)
                    return None
    except Exception as exc:  # bad CRC, truncated data, unsupported method
        state.problem("zip-corrupt", where, f"{type(exc).__name__}: {exc}"[:200], UNSCANNED)
        return None
    state.total += len(out)
    return bytes(out)
