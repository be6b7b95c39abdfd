"""Mailboxes on disk: one Maildir per mailbox under a root folder.

A live host (``mxsim serve``) files final deliveries here so that they
survive a restart and a POP3 client can read them after one.  The layout
and the write rule are Maildir's (D. J. Bernstein, "Using maildir format";
what Postfix's local(8), Dovecot and fetchmail's MDAs expect):

* ``ROOT/<mailbox>/{tmp,new,cur}``; the mailbox folder is the address,
  with anything that cannot be a file name percent-encoded;
* a message is written to ``tmp/``, fsynced, renamed into ``new/`` and
  ``new/`` is fsynced, so a crash leaves either the whole message or none
  (a stray file in ``tmp/`` is never listed, and is removed on load);
* the file name is unique and sorts in delivery order:
  ``<seconds>.M<microseconds>Q<sequence>.<queue ID>.<host>``;
* a message is its bytes exactly as filed (the envelope is not kept).

The clock is the caller's (``now``): nothing here reads the wall clock.
"""
from __future__ import annotations

import errno
import os
import re
import tempfile
from pathlib import Path
from urllib.parse import quote, unquote

#: The three folders of a Maildir.
SUBDIRS = ("tmp", "new", "cur")
#: Characters kept as they are in a mailbox's folder name (the rest is %XX).
_SAFE = "@+-_.=~"
_NAME = re.compile(r"^(\d{10})\.M(\d{6})Q(\d+)\.([A-Za-z0-9_-]+)\.")


class Maildir:
    """The Maildirs of one host under ``root`` (see the module docstring)."""

    def __init__(self, root: str | os.PathLike, hostname: str) -> None:
        self.root = Path(root)
        self.hostname = re.sub(r"[^A-Za-z0-9.-]", "_", hostname) or "localhost"
        self._seq = 0

    def check(self) -> None:
        """Make the root and prove that it, and every mailbox already in it,
        takes new files; raises :class:`OSError` naming the folder."""
        folder = self.root
        try:
            if self.root.exists() and not self.root.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, "it is not a folder")
            self.root.mkdir(parents=True, exist_ok=True)
            for folder in [self.root] + [self.root / name / "tmp" for name in self._folders()]:
                with tempfile.TemporaryFile(dir=folder):
                    pass
        except OSError as exc:
            raise OSError(exc.errno, f"cannot write in {folder}: "
                                     f"{exc.strerror or exc}") from None

    def folder(self, mailbox: str) -> Path:
        """The Maildir of ``mailbox`` (not created)."""
        name = quote(mailbox.lower(), safe=_SAFE)
        if name in (".", ".."):
            name = name.replace(".", "%2E")
        return self.root / name

    def deliver(self, mailbox: str, data: bytes, *, now: float, msg: str) -> str:
        """Write ``data`` durably into ``mailbox``'s ``new/``; returns the
        file name.  ``msg`` (the queue ID) goes into the name so a listing
        after a restart can tell which message a file is."""
        box = self.folder(mailbox)
        for sub in SUBDIRS:
            (box / sub).mkdir(parents=True, exist_ok=True)
        self._seq += 1
        seconds = int(now)
        micros = min(int(round((now - seconds) * 1e6)), 999_999)
        tail = re.sub(r"[^A-Za-z0-9_-]", "_", msg.rpartition("/")[2]) or "m"
        name = f"{seconds:010d}.M{micros:06d}Q{self._seq}.{tail}.{self.hostname}"
        tmp = box / "tmp" / name
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, box / "new" / name)
        _fsync_dir(box / "new")
        return name

    def load(self) -> dict[str, list[tuple[str, bytes]]]:
        """Every mailbox on disk: ``{mailbox: [(file name, bytes)]}`` in
        delivery order (``new/`` and ``cur/`` together).  Leftovers of an
        interrupted delivery in ``tmp/`` are removed."""
        out: dict[str, list[tuple[str, bytes]]] = {}
        for folder in self._folders():
            box = self.root / folder
            for stray in sorted((box / "tmp").glob("*")):
                stray.unlink(missing_ok=True)
            files = [p for sub in ("new", "cur") for p in (box / sub).glob("*") if p.is_file()]
            files.sort(key=lambda p: _order(p.name))
            out[unquote(folder)] = [(p.name, p.read_bytes()) for p in files]
        return out

    def remove(self, mailbox: str, names: list[str]) -> None:
        """Delete those files of ``mailbox`` (in ``new/`` or ``cur/``), durably."""
        box = self.folder(mailbox)
        touched = set()
        for name in names:
            for sub in ("new", "cur"):
                path = box / sub / name
                if path.exists():
                    path.unlink()
                    touched.add(sub)
        for sub in sorted(touched):
            _fsync_dir(box / sub)

    @staticmethod
    def queue_id(name: str) -> str | None:
        """The queue ID's last part recorded in a file name (None if the
        name is not one of ours)."""
        m = _NAME.match(name)
        return m.group(4) if m else None

    def _folders(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and all((p / sub).is_dir() for sub in SUBDIRS))


def _order(name: str) -> tuple:
    """Delivery order of a file name: ours by time and sequence, foreign
    names (a file dropped in by another MDA) after them, by name."""
    m = _NAME.match(name)
    if m is None:
        return (1, 0, 0, 0, name)
    return (0, int(m.group(1)), int(m.group(2)), int(m.group(3)), name)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
