"""swarmkeeper's exceptions, and where each SwarmUI error shape comes from.

    SwarmkeeperError
    ├── APIError            a route refuses the request: HTTP 200 {"error": "..."}
    ├── TransportError      the framework refuses it: HTTP 400 {"error_id": ..., "error": ...}
    │   ├── InvalidSession  the one SwarmUI framework error sent as HTTP 401
    │   └── InvalidAPIKey   (swarmkeeper) a bad Authorization: Bearer key, also HTTP 401
    ├── SettingsError       a setting value does not parse (names the setting); routes
    │                       turn it into an APIError, the file loader into a warning
    └── BackendError        raised by a backend type's own code
        ├── BackendInitError    init failed; the lifecycle retries, then marks it errored
        └── BackendConfigError  its settings can never work; errored at once, no retry
"""

from __future__ import annotations


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
