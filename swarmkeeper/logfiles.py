"""Log files under ``<data_dir>/logs/``, rotated by size:

- ``server.log``: what the console shows (same level, same format);
- ``backend-<id>.log``: every line one backend logged (its process's output included), at any
  level: what ``ListRecentLogMessages`` keeps for ``backend-<id>``, but kept across restarts.

Each file rotates when it passes ``max_bytes`` (``server.log.1`` ... ``server.log.<backups>``).
At most ``open_files`` backend files are open at once; the least recently written is closed
(and reopened on its next line), so a rack of backends never runs the process out of files.
The folder is made 0700 and every file (rotated ones too) is created 0600: logs say who did what.
"""

from __future__ import annotations

import collections
import io
import logging
import os
from dataclasses import dataclass
from logging.handlers import RotatingFileHandler
from pathlib import Path

from swarmkeeper.logs import VERBOSE, identifier_for

MIB = 1024 * 1024
log = logging.getLogger("swarmkeeper.logs")


@dataclass(frozen=True)
class RotationPolicy:
    #: A file is rotated once it passes this size; 0 turns log files off.
    max_bytes: int = 10 * MIB
    #: Rotated files kept (server.log.1 ... server.log.N).
    backups: int = 5
    #: Backend log files open at once.
    open_files: int = 64

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0


class PrivateRotatingFile(RotatingFileHandler):
    """A RotatingFileHandler whose files are created 0600, whatever the umask."""

    def _open(self) -> io.TextIOWrapper:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return io.TextIOWrapper(io.FileIO(fd, "a"), encoding=self.encoding, errors=self.errors)


def rotating_file(path: Path, policy: RotationPolicy, formatter: logging.Formatter) -> RotatingFileHandler:
    handler = PrivateRotatingFile(path, maxBytes=policy.max_bytes, backupCount=policy.backups, encoding="utf-8",
                                  delay=True)
    handler.setFormatter(formatter)
    return handler


class BackendFiles(logging.Handler):
    """Sends each backend's lines to its own rotating file."""

    def __init__(self, folder: Path, policy: RotationPolicy, formatter: logging.Formatter) -> None:
        super().__init__(level=VERBOSE)
        self.folder = folder
        self.policy = policy
        self.setFormatter(formatter)
        self._open: collections.OrderedDict[str, RotatingFileHandler] = collections.OrderedDict()

    def emit(self, record: logging.LogRecord) -> None:
        identifier = identifier_for(record.name)
        if identifier is None:
            return
        try:
            self._file_for(identifier).emit(record)
        except Exception:  # a log handler must never raise into the code that logged
            self.handleError(record)

    def _file_for(self, identifier: str) -> RotatingFileHandler:
        handler = self._open.get(identifier)
        if handler is not None:
            self._open.move_to_end(identifier)
            return handler
        while len(self._open) >= self.policy.open_files:
            _, oldest = self._open.popitem(last=False)
            oldest.close()
        assert self.formatter is not None
        handler = self._open[identifier] = rotating_file(self.folder / f"{identifier}.log", self.policy,
                                                         self.formatter)
        return handler

    @property
    def open_count(self) -> int:
        return len(self._open)

    def close(self) -> None:
        for handler in self._open.values():
            handler.close()
        self._open.clear()
        super().close()


def setup_log_files(data_dir: Path, level: int, formatter: logging.Formatter,
                    policy: RotationPolicy = RotationPolicy()) -> list[logging.Handler]:
    """Add the file handlers to swarmkeeper's (and uvicorn's) loggers; returns them. A folder that
    cannot be made is logged, and the server runs on without log files."""
    if not policy.enabled:
        return []
    folder = data_dir / "logs"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        log.error("Cannot write log files in %s (%s); logging to the console only", folder, error)
        return []
    server = rotating_file(folder / "server.log", policy, formatter)
    server.setLevel(level)
    backends = BackendFiles(folder, policy, formatter)
    logging.getLogger("swarmkeeper").addHandler(server)
    logging.getLogger("swarmkeeper").addHandler(backends)
    logging.getLogger("uvicorn.error").addHandler(server)
    return [server, backends]
