"""Output paths, checked before anything runs.

A command that would write into a folder that cannot be made (a path
component is a file, a parent is not writable) or over a folder with a file
name fails at once with exit status 2 and a message naming the option,
rather than a traceback after minutes of simulation.  Missing folders are
created, as ``mkdir -p`` would, when the output is written.
"""
from __future__ import annotations

import os
from pathlib import Path

from sim.cli import UsageError


def _first_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def _check_creatable(folder: Path, option: str, wanted: str, given: Path) -> None:
    """``folder`` exists or can be made; messages name the ``given`` path."""
    base = _first_existing(folder)
    if not base.is_dir():
        raise UsageError(f"{option} {given}: {base} is a file, so the {wanted} cannot go under it")
    if base != folder and not os.access(base, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {given}: cannot create folders in {base} (not writable)")


def output_dir(value: str | os.PathLike, option: str) -> Path:
    """``value`` as a folder the command may write into (made if missing)."""
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path}: expected a folder, but it is a file")
    if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: the folder is not writable")
    _check_creatable(path, option, "folder", path)
    return path


def output_file(value: str | os.PathLike, option: str) -> Path:
    """``value`` as a file the command may write (its folders made if missing)."""
    path = Path(value)
    if path.is_dir():
        raise UsageError(f"{option} {path}: expected a file name, but it is a folder")
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"{option} {path}: the file is not writable")
    _check_creatable(path.parent, option, "file", path)
    return path


def prepare_file(path: Path) -> Path:
    """Make ``path``'s folders, right before writing it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
