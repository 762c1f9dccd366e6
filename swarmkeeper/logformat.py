"""Log line formats: SwarmUI's text (logs.py's SwarmFormatter, the default) or JSON lines for
machines (``serve --log_format json``)::

    {"time": "2026-01-02T03:04:05.678+00:00", "level": "Info", "logger": "swarmkeeper.backend.3",
     "message": "...", "backend": 3}

``backend`` is there when the line is about one backend (it was logged to that backend's logger,
``swarmkeeper.backend.<id>``, or with ``extra={"backend_id": ...}``); ``exception`` holds the
traceback text when there is one. One line per record: newlines inside strings are escaped.
"""

from __future__ import annotations

import datetime
import json
import logging
from enum import StrEnum

from swarmkeeper.logs import BACKEND_LOGGER_PREFIX, SwarmFormatter, level_name


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


def backend_of(record: logging.LogRecord) -> int | None:
    """The backend a record is about, if any."""
    explicit = getattr(record, "backend_id", None)
    if isinstance(explicit, int) and not isinstance(explicit, bool):
        return explicit
    if not record.name.startswith(BACKEND_LOGGER_PREFIX):
        return None
    head = record.name[len(BACKEND_LOGGER_PREFIX):].split(".", 1)[0]
    try:
        return int(head)
    except ValueError:
        return None


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.datetime.fromtimestamp(record.created).astimezone()
        line: dict[str, object] = {
            "time": stamp.isoformat(timespec="milliseconds"),
            "level": level_name(record.levelno),
            "logger": record.name,
            "message": record.getMessage(),
        }
        backend = backend_of(record)
        if backend is not None:
            line["backend"] = backend
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def formatter_for(log_format: LogFormat | str) -> logging.Formatter:
    return JSONFormatter() if LogFormat(log_format) is LogFormat.JSON else SwarmFormatter()
