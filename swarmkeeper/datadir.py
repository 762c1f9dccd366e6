"""The data folder and what swarmkeeper writes in it are its owner's alone: the folder 0700, its
files 0600 (Backends.fds and Settings.fds hold secrets in clear text, the database holds accounts,
the logs hold what users did).

New files are created with those modes where they are written (files.py, db.py, logfiles.py,
datalock.py); what an older version or another program left more open is tightened here at start,
and each change is logged.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from swarmkeeper.exceptions import DataFileError

PRIVATE_DIR = 0o700
LOGS_FOLDER = "logs"

log = logging.getLogger("swarmkeeper.datadir")


def make_private_dir(folder: Path) -> None:
    """Create ``folder`` (0700) if needed; DataFileError if it cannot be, or is not a folder."""
    try:
        folder.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    except FileExistsError as error:
        raise DataFileError(folder, "is a file; the data folder must be a directory") from error
    except OSError as error:
        raise DataFileError(folder, f"cannot be created as the data folder ({error.strerror or error})") from error
    tighten([folder])


def tighten(paths: Iterable[Path]) -> list[Path]:
    """Take group and other permissions off each existing path (symlinks are left alone); returns
    what was changed, each logged."""
    changed = []
    for path in paths:
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            continue
        mode = stat.S_IMODE(info.st_mode)
        if stat.S_ISLNK(info.st_mode) or not mode & 0o077:
            continue
        _set_mode(path, mode & ~0o077)
        log.warning("Tightened %s from %o to %o: only its owner may read it", path, mode, mode & ~0o077)
        changed.append(path)
    return changed


def _set_mode(path: Path, mode: int) -> None:
    try:
        os.chmod(path, mode)
    except OSError as error:
        raise DataFileError(path, f"is readable by others and its mode cannot be changed ({error.strerror or error})") \
            from error


def private_paths(folder: Path, *elsewhere: Path) -> Iterator[Path]:
    """The data folder, every file directly in it, its log folder and log files, then ``elsewhere``
    (a Backends.fds or Settings.fds given outside the folder by flag)."""
    yield folder
    for base in (folder, folder / LOGS_FOLDER):
        if base.is_dir():
            yield from (path for path in base.iterdir() if path.is_file() or path.name == LOGS_FOLDER)
    yield from (path for path in elsewhere if path.is_file())
