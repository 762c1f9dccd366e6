"""The error boundary: every httpx, http1, websockets, OS and timeout error becomes a ``ComfyError``."""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Iterator

import httpx
import websockets
from websockets.exceptions import ConnectionClosedError, InvalidHandshake, InvalidStatus, InvalidURI

from swarmkeeper.clients.errors import (
    REFUSED_MESSAGE,
    ComfyError,
    ComfyProtocolError,
    ComfyRequestError,
    ComfyTimeout,
    ComfyUnreachable,
    causes,
)
from swarmkeeper.clients.http1 import BadHTTP, TooLarge

MIB = 1024 * 1024


def _unreachable(exc: BaseException) -> ComfyUnreachable:
    """Name the reason a connection could not be made or was lost."""
    for cause in causes(exc):
        if isinstance(cause, ConnectionRefusedError):
            return ComfyUnreachable(REFUSED_MESSAGE)
        if isinstance(cause, socket.gaierror):
            return ComfyUnreachable("Unknown host - is the backend address correct?")
        if isinstance(cause, OSError) and cause.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return ComfyUnreachable("No route to the backend's host - is the address correct?")
        if isinstance(cause, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            return ComfyUnreachable("The connection to the backend was lost.")
    return ComfyUnreachable(f"Could not reach the backend: {str(exc)[:120] or type(exc).__name__}.")


def _from_httpx(exc: httpx.HTTPError, timeout: float) -> ComfyError:
    """Map one httpx error (no httpx type escapes this package)."""
    if isinstance(exc, httpx.TimeoutException):
        return ComfyTimeout(f"The backend did not answer within {timeout:g} s.")
    if isinstance(exc, httpx.ConnectError):
        return _unreachable(exc)
    if isinstance(exc, httpx.RemoteProtocolError):
        # h11 says "Server disconnected ..." for a closed socket; anything else is bad HTTP.
        if "disconnected" in str(exc).lower():
            return ComfyUnreachable("The backend closed the connection without answering.")
        return ComfyProtocolError("The backend's answer is not valid HTTP - is this a ComfyUI address?")
    if isinstance(exc, httpx.NetworkError):
        return _unreachable(exc)
    if isinstance(exc, httpx.DecodingError):
        return ComfyProtocolError("The backend's answer could not be decoded.")
    return ComfyError(f"Request to the backend failed: {str(exc)[:120] or type(exc).__name__}.")


def _from_websockets(exc: Exception) -> ComfyError:
    """Map one websockets error."""
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        return ComfyRequestError(
            f"The backend refused the websocket with HTTP {status} - is this a ComfyUI address?",
            status=status,
            body=exc.response.body.decode(errors="replace") if exc.response.body else "",
        )
    if isinstance(exc, ConnectionClosedError):
        if exc.sent is not None and exc.sent.code == 1009:  # we refused an oversized message
            return ComfyProtocolError("A websocket message from the backend was larger than allowed.")
        return ComfyUnreachable("The websocket connection to the backend was lost.")
    if isinstance(exc, (InvalidHandshake, InvalidURI)):
        return ComfyProtocolError("The backend did not accept a websocket - is this a ComfyUI address?")
    return _unreachable(exc)


def _too_large(exc: TooLarge, limit: int) -> ComfyProtocolError:
    if exc.declared is not None:
        return ComfyProtocolError(f"The backend's answer is too large ({exc.declared // MIB} MiB).")
    return ComfyProtocolError(f"The backend's answer is larger than {limit // MIB} MiB.")


@contextlib.contextmanager
def map_errors(timeout: float, limit: int = 0) -> Iterator[None]:
    """The one boundary: httpx, http1, websockets, OS and timeout errors become ``ComfyError``s
    (``limit`` is the size cap of the answer, for the message when it is exceeded)."""
    try:
        yield
    except ComfyError:
        raise
    except httpx.HTTPError as exc:
        raise _from_httpx(exc, timeout) from exc
    except EOFError as exc:  # http1: the server closed the connection before its answer was whole
        raise ComfyUnreachable("The backend closed the connection without answering.") from exc
    except BadHTTP as exc:
        raise ComfyProtocolError("The backend's answer is not valid HTTP - is this a ComfyUI address?") from exc
    except TooLarge as exc:
        raise _too_large(exc, limit) from exc
    except TimeoutError as exc:
        raise ComfyTimeout(f"The backend did not answer within {timeout:g} s.") from exc
    except (websockets.WebSocketException, OSError) as exc:
        raise _from_websockets(exc) from exc
