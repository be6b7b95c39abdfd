"""Blocked attachments: the first file name on the walk that must not pass.

The authenticated-relay seed (``shared/seeds/003``) refuses "attachments
such as .pif, .bat, .exe, .scr, etc."; the "etc." a careful provider adds
is ``.com .cmd .vbs .js .jar`` (:data:`DEFAULT_BLOCKED`), and the list is
configurable.  :func:`find_blocked` is a pure function over a
:class:`~mta.filters.mime.MimeWalk`; the caller refuses at end of DATA
with ``hit.reply`` (``550 5.7.1`` naming the file).

A name is normalised the way Windows resolves it before its extension is
compared, case-insensitively:

* only the last path component counts (``C:\\tmp\\a.exe``, ``../a.exe``);
* an NTFS stream suffix goes (``a.exe::$DATA``, ``a.exe:zone``), and the
  name as written is checked too (``a:b.exe``);
* a NUL ends the name (C APIs stop there), and both forms are checked;
* CR and LF are dropped (the walk removes them: they are header folding);
* trailing dots and spaces go (``a.exe. .``: Windows ignores them);
* the last extension decides, so ``report.txt.exe`` is blocked (and
  flagged as a double extension) while ``setup.exe.txt`` is not.

Every name of every part counts (``filename=`` and ``name=`` may differ),
including members of zip archives at any depth.  Names that are empty
block nothing; huge names are judged by their tail, which the walk keeps;
undecodable names are judged on their Latin-1 fallback, in which an ASCII
extension survives.  None of them raises.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from mta.filters.mime import MimeWalk
from mta.filters.replies import Reply, blocked_attachment

SEED_BLOCKED = (".pif", ".bat", ".exe", ".scr")
DEFAULT_BLOCKED = SEED_BLOCKED + (".com", ".cmd", ".vbs", ".js", ".jar")


@dataclass(frozen=True, slots=True)
class AttachmentRules:
    """Which extensions are refused (with or without the leading dot, any case)."""

    blocked: tuple[str, ...] = DEFAULT_BLOCKED

    def __post_init__(self) -> None:
        cleaned = []
        for ext in self.blocked:
            ext = ext.strip().lower()
            if not ext.strip("."):
                raise ValueError(f"blocked extension {ext!r} is empty")
            cleaned.append("." + ext.lstrip("."))
        object.__setattr__(self, "blocked", tuple(dict.fromkeys(cleaned)))

    def extension(self, name: str) -> str | None:
        """The blocked extension ``name`` resolves to, or None."""
        for candidate in _candidates(name):
            ext = _last_extension(candidate)
            if ext is not None and ext in self.blocked:
                return ext
        return None


DEFAULT_RULES = AttachmentRules()


@dataclass(frozen=True, slots=True)
class BlockedAttachment:
    """The file that made the message refusable."""

    name: str            # as decoded from the message (or the archive)
    extension: str       # the blocked extension it resolves to, ".exe"
    where: str           # the part's path in the walk
    in_archive: bool = False
    double_extension: bool = False
    undecodable: bool = False

    @property
    def reply(self) -> Reply:
        """``550 5.7.1 Attachment "<name>" refused: .exe files are not permitted``."""
        return blocked_attachment(self.name, self.extension)


def _basename(name: str) -> str:
    return unicodedata.normalize("NFKC", name).replace("\\", "/").rsplit("/", 1)[-1]


def _trim(name: str) -> str:
    return name.rstrip(". \t").lower()


def normalise(name: str) -> str:
    """``name`` as Windows would resolve it (see the module docstring),
    lower-cased; NFKC folds full-width letters, so ``ｅｘｅ`` is ``exe``."""
    name = _basename(name)
    if ":" in name:               # NTFS alternate data stream: a.exe::$DATA
        name = name.split(":", 1)[0]
    return _trim(name)


def _candidates(name: str) -> list[str]:
    """Every form a client might save ``name`` as: resolved as Windows does,
    cut at a NUL, and as written (a client that replaces ``:`` rather than
    reading it as a stream name); a name is blocked if any form is."""
    forms = [normalise(name), _trim(_basename(name))]
    if "\0" in name:
        forms.append(normalise(name.split("\0", 1)[0]))
    return forms


def _last_extension(name: str) -> str | None:
    stem, dot, ext = name.rpartition(".")
    if not dot or not ext:
        return None
    return "." + ext


def _is_double(name: str) -> bool:
    return normalise(name).count(".") >= 2


def find_blocked(walk: MimeWalk,
                 rules: AttachmentRules = DEFAULT_RULES) -> BlockedAttachment | None:
    """The first part (in walk order) with a blocked name, or None."""
    for part in walk.parts:
        for name in part.names:
            if not name.value.strip():
                continue
            ext = rules.extension(name.value)
            if ext is not None:
                return BlockedAttachment(name=name.value, extension=ext, where=part.path,
                                         in_archive=part.in_archive,
                                         double_extension=_is_double(name.value),
                                         undecodable=name.undecodable)
    return None
