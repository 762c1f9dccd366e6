"""Cross-site requests to the pool are refused, as ComfyUI's ``origin_only_middleware`` does.

A browser names the page that made a request in its ``Origin`` header. A request whose origin is
neither the server's own (the host and port the request came to, as its ``Host`` names them; the
scheme is not compared, so a TLS proxy in front changes nothing) nor one listed with
``--allowed_origins`` is answered 403, so a page on another site cannot queue prompts, clear the
queue or listen on ``/ws`` through a visitor's browser. Clients that send no ``Origin`` (scripts,
ComfyUI clients, SwarmUI) are not browsers running someone else's page, and pass.

Unlike ComfyUI, the check holds whatever the host is (ComfyUI checks only loopback hosts).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse, Response

log = logging.getLogger("swarmkeeper.dispatch.pool")
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
Place = tuple[str, str, int]


def normal_origin(text: str) -> Place | None:
    """An origin (``scheme://host[:port]``) as (scheme, host, port), or None when it is not one."""
    try:
        parts = urlsplit(text.strip().lower())
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname or port is None or parts.path not in ("", "/"):
        return None
    return parts.scheme, parts.hostname, port


def parse_allowed(text: str) -> tuple[str, ...]:
    """``--allowed_origins``: comma-separated origins; raises ValueError naming a bad one."""
    allowed = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if normal_origin(item) is None:
            raise ValueError(f"'{item}' is not an origin such as https://example.com or http://10.0.0.5:7801")
        allowed.append(item)
    return tuple(allowed)


def own_place(host: str, scheme: str) -> Place | None:
    """The origin a page served by this request's ``Host`` would have (in the origin's scheme)."""
    try:
        parts = urlsplit("//" + host.strip().lower())
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        return None
    return (scheme, parts.hostname, port) if parts.hostname and port is not None else None


def is_allowed(origin: str, host: str, allowed: Iterable[str]) -> bool:
    place = normal_origin(origin)
    if place is None:
        return False  # "null" (a sandboxed page, a file) or garbage: never the server's own
    if place == own_place(host, place[0]):
        return True
    return any(place == normal_origin(item) for item in allowed)


def cross_site_refusal(connection: HTTPConnection, allowed: Iterable[str]) -> Response | None:
    """ComfyUI's 403 for a browser request from another origin; None when it may go on."""
    origin = connection.headers.get("origin")
    if origin is None:
        return None
    host = connection.headers.get("host", "")
    if is_allowed(origin, host, allowed):
        return None
    log.warning("Refused a request to the ComfyUI pool from origin %r (the server is %r; see --allowed_origins)",
                origin[:200], host[:200])
    return PlainTextResponse("Forbidden: cross-origin request (see --allowed_origins).", status_code=403)
