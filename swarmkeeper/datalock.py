"""One server per data folder: an OS lock on ``<data_dir>/swarmkeeper.lock``.

``fcntl.flock`` on the file, held open for the life of the process. The kernel releases the lock
when the process ends, however it ends (kill -9 too), so a lock file left behind never blocks a
start. The file holds the holder's pid, which a second server names when it refuses to start.
The descriptor is not inherited (Python's default), so a ComfyUI the server started never holds
the lock after the server is gone.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from swarmkeeper.exceptions import DataDirInUse, DataFileError

LOCK_FILE = "swarmkeeper.lock"


class DataDirLock:
    def __init__(self, folder: Path, fd: int) -> None:
        self.folder = folder
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, folder: Path) -> DataDirLock:
        """Lock ``folder`` for this process; DataDirInUse if another process holds it."""
        path = folder / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as error:
            reason = f"cannot be opened to lock the data folder ({error.strerror or error})"
            raise DataFileError(path, reason) from error
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _holder(fd)
            os.close(fd)
            raise DataDirInUse(folder, pid) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(folder, fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Unlock (closing the file does it); the lock file stays, it is harmless."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _holder(fd: int) -> int | None:
    """The pid the holder wrote (None while it has not written it yet)."""
    text = os.pread(fd, 32, 0).decode("ascii", errors="replace").strip()
    return int(text) if text.isdigit() else None
