"""Files SwarmUI and swarmkeeper both write: atomic replacement, and recovery of a cut-off write.

The write follows SwarmUI's dance so either program can recover the other's file: the new text
goes to ``<file>~1``, the old file becomes ``<file>~2``, ``~1`` becomes the file, ``~2`` is
deleted. A reader that finds no file but a ``~2`` uses the ``~2``; a ``~1`` may be half-written
and is ignored.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("swarmkeeper.files")


def sidecar(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through the ``~1``/``~2`` dance, fsync'd, mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new, old = sidecar(path, "~1"), sidecar(path, "~2")
    fd = os.open(new, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(new, 0o600)
    if path.exists():
        os.replace(path, old)
    os.replace(new, path)
    old.unlink(missing_ok=True)
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_text(path: Path) -> str | None:
    """The file's text; when a write was cut off between the renames, the ``~2`` is first put
    back in its place. None if there is neither."""
    previous = sidecar(path, "~2")
    if not path.is_file() and previous.is_file():
        log.warning("File %s is missing; recovering it from %s", path, previous)
        os.replace(previous, path)
    return path.read_text(encoding="utf-8") if path.is_file() else None
