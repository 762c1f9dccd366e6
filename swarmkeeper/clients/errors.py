"""Errors raised by the protocol clients, whatever library or wire problem lies beneath.

Callers catch these, never httpx's or websockets' exceptions: each client maps library errors
into this hierarchy at one boundary. Every message is short and readable by a person, since it
becomes a backend's status reason in the UI.

    ComfyError                  base; ``message`` is the text to show
    ├── ComfyUnreachable        connection refused, unknown host, connection reset or closed
    ├── ComfyTimeout            no complete answer within the client's timeout
    ├── ComfyProtocolError      an answer that is not ComfyUI's: not JSON, HTML, a wrong shape,
    │                           a malformed websocket frame, or larger than the size cap
    └── ComfyRequestError       ComfyUI answered with an HTTP error (4xx/5xx); carries ``status``,
                                the parsed ``body`` (JSON, else text) and ComfyUI's ``error_type``
                                (e.g. ``invalid_prompt`` for POST /prompt validation errors)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

REFUSED_MESSAGE = "Connection refused - is the backend running, or is the address correct?"


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and its causes, outermost first (what a library error wraps: the OS error names the
    reason a person can act on)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


class ComfyError(Exception):
    """Base of everything the ComfyUI client raises."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ComfyUnreachable(ComfyError):
    """The backend cannot be reached, or dropped the connection."""


class ComfyTimeout(ComfyError):
    """The backend did not answer in time."""


class ComfyProtocolError(ComfyError):
    """The backend answered, but not as ComfyUI does."""


class ComfyRequestError(ComfyError):
    """ComfyUI refused a request with an HTTP error status.

    ``body`` is the decoded JSON body when there is one (ComfyUI's ``{"error": {...},
    "node_errors": {...}}`` for POST /prompt), else the body text. ``error_type`` is
    ``body["error"]["type"]`` when present.
    """

    def __init__(self, message: str, *, status: int, body: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = body

    @property
    def error_type(self) -> str | None:
        """ComfyUI's ``error.type`` (``invalid_prompt``, ``prompt_no_outputs``, ...), if any."""
        error = self.body.get("error") if isinstance(self.body, dict) else None
        kind = error.get("type") if isinstance(error, dict) else None
        return kind if isinstance(kind, str) else None

    @property
    def node_errors(self) -> dict[str, Any]:
        """ComfyUI's per-node validation errors (empty when there are none)."""
        errors = self.body.get("node_errors") if isinstance(self.body, dict) else None
        return errors if isinstance(errors, dict) else {}
