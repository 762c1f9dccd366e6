"""Files SwarmUI and swarmkeeper both write: atomic replacement, and recovery of a cut-off write.

The write follows SwarmUI's dance so either program can recover the other's file: the new text
goes to ``<file>~1``, the old file becomes ``<file>~2``, ``~1`` becomes the file, ``~2`` is
deleted. A reader that finds no file but a ``~2`` uses the ``~2``; a ``~1`` may be half-written
and is ignored.

Everything written here is the owner's alone: files 0600, folders made 0700. A file that cannot
be read as UTF-8 text (a directory in its place, invalid UTF-8, no permission) raises
DataFileError, and is never renamed or overwritten.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from pathlib import Path

from swarmkeeper.exceptions import DataFileError

log = logging.getLogger("swarmkeeper.files")


def sidecar(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through the ``~1``/``~2`` dance, fsync'd, mode 0600."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.path.lexists(path) and not path.is_file():
        raise IsADirectoryError(errno.EISDIR, "not a regular file; it is left as it is", str(path))
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
    back in its place. None if there is neither; DataFileError if it cannot be read as text."""
    previous = sidecar(path, "~2")
    if not os.path.lexists(path) and previous.is_file():
        log.warning("File %s is missing; recovering it from %s", path, previous)
        os.replace(previous, path)
    try:
        data = _read_regular(path)
    except FileNotFoundError:
        return None
    except IsADirectoryError as error:
        raise DataFileError(path, "is a directory, not a file") from error
    except OSError as error:
        raise DataFileError(path, f"cannot be read ({error.strerror or error})") from error
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise DataFileError(path, f"is not valid UTF-8 text (byte {error.start})", line) from error


def _read_regular(path: Path) -> bytes:
    with open(path, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise DataFileError(path, "is not a regular file")
        return handle.read()
