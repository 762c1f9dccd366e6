"""swarmkeeper's exceptions, and where each SwarmUI error shape comes from.

    SwarmkeeperError
    ├── APIError            a route refuses the request: HTTP 200 {"error": "..."}
    ├── TransportError      the framework refuses it: HTTP 400 {"error_id": ..., "error": ...}
    │   ├── InvalidSession  the one SwarmUI framework error sent as HTTP 401
    │   └── InvalidAPIKey   (swarmkeeper) a bad Authorization: Bearer key, also HTTP 401
    ├── SettingsError       a setting value does not parse (names the setting); routes
    │                       turn it into an APIError, the file loader into a warning
    ├── BackendError        raised by a backend type's own code
    │   ├── BackendInitError    init failed; the lifecycle retries, then marks it errored
    │   └── BackendConfigError  its settings can never work; errored at once, no retry
    └── StartupError        the server cannot start: ``serve`` logs the one-line message, exits 1
        ├── DataFileError   a file in the data folder cannot be read or does not parse (names the
        │                   file, and the line when there is one)
        └── DataDirInUse    another server holds the data folder's lock (names its pid)
"""

from __future__ import annotations

from pathlib import Path


class SwarmkeeperError(Exception):
    """Base of everything swarmkeeper raises on purpose."""


class APIError(SwarmkeeperError):
    """A handler-level refusal, answered as HTTP 200 ``{"error": message}``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TransportError(SwarmkeeperError):
    """A framework-level refusal, answered as ``{"error_id", "error"}`` with an HTTP error code."""

    status_code = 400

    def __init__(self, error_id: str, message: str) -> None:
        super().__init__(message)
        self.error_id = error_id
        self.message = message


class InvalidSession(TransportError):
    status_code = 401

    def __init__(self) -> None:
        super().__init__("invalid_session_id", "Invalid session ID. You may need to refresh the page.")


class InvalidAPIKey(TransportError):
    """A request carried a swarmkeeper API key that is malformed, unknown, revoked or expired."""

    status_code = 401

    def __init__(self, message: str) -> None:
        super().__init__("invalid_api_key", message)


class SettingsError(SwarmkeeperError, ValueError):
    """A setting's value cannot be used; the message names the setting."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting
        self.message = message


class BackendError(SwarmkeeperError):
    """Raised by backend type code. The message is shown to users as the status reason."""


class BackendInitError(BackendError):
    """Init failed in a way that may pass: the lifecycle retries it."""


class BackendConfigError(BackendError):
    """The backend's settings can never work as they are: errored, no retry."""


class StartupError(SwarmkeeperError):
    """The server cannot start. The message is one line that says why and names what to fix."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DataFileError(StartupError, ValueError):
    """A data file (Settings.fds, Backends.fds, the database, ...) cannot be used as it is; the
    file is left untouched. ``line`` is 1-based, or None when the problem is not on one line."""

    def __init__(self, path: Path | str, reason: str, line: int | None = None) -> None:
        where = f"{path}, line {line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {reason}")
        self.path = Path(path)
        self.reason = reason
        self.line = line


class DataDirInUse(StartupError):
    """Another swarmkeeper server already runs on this data folder."""

    def __init__(self, folder: Path, pid: int | None) -> None:
        holder = f"pid {pid}" if pid is not None else "pid unknown"
        super().__init__(f"The data folder {folder} is in use by another swarmkeeper server ({holder}); "
                         "stop it first, or give this one its own --data_dir")
        self.folder = folder
        self.pid = pid
