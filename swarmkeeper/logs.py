"""Logging in SwarmUI's shape (``HH:MM:SS.mmm [Level] message``), and recent lines kept per
identifier so they can be read back through the API: ``Server`` for everything, and
``backend-<id>`` for what one backend (and its process) said, the name SwarmUI's web UI looks for.
"""

from __future__ import annotations

import array
import itertools
import logging
import sys
import threading
import time
from typing import NamedTuple

VERBOSE = 5
INIT = 25
logging.addLevelName(VERBOSE, "Verbose")
logging.addLevelName(INIT, "Init")

#: SwarmUI's level names, as --loglevel takes them.
LEVELS: dict[str, int] = {
    "verbose": VERBOSE, "debug": logging.DEBUG, "info": logging.INFO, "init": INIT,
    "warning": logging.WARNING, "error": logging.ERROR, "none": logging.CRITICAL + 10,
}
_NAMES = {VERBOSE: "Verbose", logging.DEBUG: "Debug", logging.INFO: "Info", INIT: "Init",
          logging.WARNING: "Warning", logging.ERROR: "Error", logging.CRITICAL: "Error"}
BACKEND_LOGGER_PREFIX = "swarmkeeper.backend."


def level_name(levelno: int) -> str:
    return _NAMES.get(levelno, logging.getLevelName(levelno))


def parse_level(name: str) -> int:
    try:
        return LEVELS[name.strip().lower()]
    except KeyError:
        raise ValueError(f"Unknown log level '{name}': use one of {', '.join(n.title() for n in LEVELS)}") from None


class SwarmFormatter(logging.Formatter):
    """``12:34:56.789 [Info] message``, as SwarmUI prints."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        text = f"{stamp}.{int(record.msecs):03d} [{level_name(record.levelno)}] {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class LogLine(NamedTuple):
    """One line kept, as :meth:`LogStore.recent` gives it."""

    sequence: int
    time: float
    level: str
    message: str


_Text = tuple[str, str]  # (level, message)

#: How many of an identifier's newest lines a new line is compared with, to share their text.
SHARED_WINDOW = 4


class _Ring:
    """One identifier's last ``size`` lines, column by column: sequences and times in arrays of
    machine numbers, each line's ``(level, message)`` a reference. A line that says what one of the
    few before it said (a backend that fails the same way on every retry) shares that line's text:
    such a line costs ~25 bytes, where a tuple of Python objects with its own copy of the message
    cost ~290 (1,000 backends retrying once a second held ~560 MB after half an hour; measured by
    bench/log_store.py)."""

    __slots__ = ("oldest", "sequences", "size", "texts", "times")

    def __init__(self, size: int) -> None:
        self.size = size
        self.sequences = array.array("q")
        self.times = array.array("d")
        self.texts: list[_Text] = []
        self.oldest = 0  # where the oldest line is, once every place is taken

    def append(self, sequence: int, when: float, level: str, message: str) -> None:
        text = self._shared(level, message)
        if len(self.texts) < self.size:
            self.sequences.append(sequence)
            self.times.append(when)
            self.texts.append(text)
            return
        at = self.oldest
        self.sequences[at], self.times[at], self.texts[at] = sequence, when, text
        self.oldest = (at + 1) % self.size

    def _shared(self, level: str, message: str) -> _Text:
        texts, newest = self.texts, self.oldest - 1  # -1 while the ring fills: a negative index
        for back in range(min(SHARED_WINDOW, len(texts))):  # wraps round, as the ring does
            text = texts[newest - back]
            if text[1] == message and text[0] == level:
                return text
        return level, message

    def lines(self, after: int) -> list[LogLine]:
        order = itertools.chain(range(self.oldest, len(self.texts)), range(self.oldest))
        sequences, times, texts = self.sequences, self.times, self.texts
        return [LogLine(sequences[at], times[at], *texts[at]) for at in order if sequences[at] > after]


class LogStore:
    """The last ``size`` lines of each identifier, in memory (see :class:`_Ring`: two numbers and a
    reference per line; the texts are tuples of strings, which the collector stops tracking)."""

    def __init__(self, size: int = 2000) -> None:
        self.size = size
        self._lines: dict[str, _Ring] = {}
        self._sequence = itertools.count(1)
        #: Lines come from any thread (work handed to a thread logs too, and the server's two
        #: handlers share the store); a line's columns are written in several steps.
        self._lock = threading.Lock()

    def append(self, identifier: str, level: str, message: str, when: float | None = None) -> None:
        with self._lock:
            ring = self._lines.get(identifier)
            if ring is None:
                ring = self._lines[identifier] = _Ring(self.size)
            ring.append(next(self._sequence), when if when is not None else time.time(), level, message)

    def identifiers(self) -> list[str]:
        with self._lock:
            return sorted(self._lines)

    def recent(self, identifier: str, after: int = 0, limit: int | None = None) -> list[LogLine]:
        with self._lock:
            ring = self._lines.get(identifier)
            lines = ring.lines(after) if ring is not None else []
        return lines[-limit:] if limit else lines


def identifier_for(logger_name: str) -> str | None:
    """``swarmkeeper.backend.3`` (and its children) log under ``backend-3``."""
    if not logger_name.startswith(BACKEND_LOGGER_PREFIX):
        return None
    return "backend-" + logger_name[len(BACKEND_LOGGER_PREFIX):].split(".", 1)[0]


class LogStoreHandler(logging.Handler):
    def __init__(self, store: LogStore) -> None:
        super().__init__(level=VERBOSE)
        self.store = store

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            level = level_name(record.levelno)
            identifier = identifier_for(record.name)
            if identifier is not None:
                self.store.append(identifier, level, message, record.created)
            if record.levelno >= logging.INFO or identifier is None:
                self.store.append("Server", level, message, record.created)
        except Exception:  # a log handler must never raise into the code that logged
            self.handleError(record)


def setup_logging(level: int, store: LogStore, formatter: logging.Formatter | None = None) -> None:
    """Console at ``level`` (SwarmUI's format unless told); the store keeps every line (backends'
    debug output included)."""
    root = logging.getLogger("swarmkeeper")
    root.setLevel(VERBOSE)
    root.propagate = False
    for handler in list(root.handlers):
        root.removeHandler(handler)
    console = logging.StreamHandler(sys.stdout)
    console.setLevel(level)
    console.setFormatter(formatter or SwarmFormatter())
    root.addHandler(console)
    root.addHandler(LogStoreHandler(store))
    server = logging.getLogger("uvicorn.error")  # uvicorn's own lines ("Uvicorn running on ..."), same shape
    server.handlers = [console, LogStoreHandler(store)]
    server.setLevel(logging.INFO)
    server.propagate = False
