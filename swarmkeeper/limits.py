"""Limits on the wire, for both ports: how long a client may take to send its headers, how long a
body may stall, how long an idle connection stays open, how many connections a port holds, how big
an unidentified caller's body may be, and whose proxy headers are believed.

uvicorn has no timeout for a request's headers (a client may trickle them for ever) and answers its
``limit_concurrency`` only once headers are complete; :mod:`swarmkeeper.guarded_http` adds both
below HTTP. :func:`server_config` is the one place either port's uvicorn.Config is built.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
from dataclasses import dataclass, replace
from typing import Any

import uvicorn

log = logging.getLogger("swarmkeeper.limits")

MB = 1024 * 1024
#: Descriptors kept for everything that is not a client connection (database, logs, backends).
RESERVED_DESCRIPTORS = 512
#: Connections refused over a cap that may stay open a moment for their answer, per port (see
#: guarded_http.LINGERING_MAX).
LINGERING_PER_PORT = 64


@dataclass(frozen=True)
class WireLimits:
    #: --header_timeout: seconds a client has to send a request's headers, counted from its
    #: connection (the first request) or from the request's first byte (the next ones).
    header_timeout: float = 10.0
    #: --body_timeout: seconds a request body may pause between two chunks.
    body_timeout: float = 30.0
    #: --keep_alive_timeout: seconds an idle connection stays open between requests (None: the port's
    #: own default, SwarmUI's 130 s on the main port and ComfyUI's 75 s on the pool's).
    keep_alive_timeout: float | None = None
    #: --max_connections: open connections per port; the next one is answered 503 and closed.
    max_connections: int = 2048
    #: --max_connections_per_address: open connections per port from one client address (addresses
    #: in forwarded_allow_ips, a proxy's, are exempt); 0: no such cap.
    max_connections_per_address: int = 256
    #: --anonymous_body_mb: the body cap for a caller not identified before its body is read.
    anonymous_body_bytes: int = 1 * MB
    #: --forwarded_allow_ips: addresses (or networks) whose X-Forwarded-For/-Proto are believed;
    #: empty: nobody's (the client address is the connection's).
    forwarded_allow_ips: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("header_timeout", "body_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be more than 0 seconds")
        if self.keep_alive_timeout is not None and not self.keep_alive_timeout > 0:
            raise ValueError("keep_alive_timeout must be more than 0 seconds")
        if self.max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        if self.max_connections_per_address < 0:
            raise ValueError("max_connections_per_address must be 0 (no cap) or more")
        if self.anonymous_body_bytes < 1:
            raise ValueError("anonymous_body_bytes must be at least 1 byte")


def parse_allowed_ips(text: str) -> tuple[str, ...]:
    """``--forwarded_allow_ips``: comma-separated addresses, networks or ``*``."""
    return tuple(entry.strip() for entry in text.split(",") if entry.strip())


def trusted_address(host: str, entries: tuple[str, ...]) -> bool:
    """True when ``host`` is one of ``entries`` (addresses, networks, or ``*``)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host in entries or "*" in entries
    for entry in entries:
        with contextlib.suppress(ValueError):
            if entry == "*" or address in ipaddress.ip_network(entry, strict=False):
                return True
    return False


def server_config(app: Any, limits: WireLimits, *, keep_alive: float, **options: Any) -> uvicorn.Config:
    """uvicorn's Config for one port, with the limits applied (``options`` go to uvicorn as they are)."""
    from swarmkeeper.guarded_http import guarded_protocol

    trusted = list(limits.forwarded_allow_ips)
    return uvicorn.Config(app, http=guarded_protocol(limits), proxy_headers=bool(trusted),
                          forwarded_allow_ips=trusted or None,
                          timeout_keep_alive=limits.keep_alive_timeout or keep_alive,  # type: ignore[arg-type]
                          **options)


def ensure_descriptors(limits: WireLimits, ports: int) -> WireLimits:
    """Raise this process's soft descriptor limit (up to its hard limit) so every port can hold
    ``max_connections``; if the hard limit is too low, lower ``max_connections`` to fit (logged)."""
    try:
        import resource
    except ImportError:  # not on a Unix: the OS decides
        return limits
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = (limits.max_connections + LINGERING_PER_PORT) * ports + RESERVED_DESCRIPTORS
    ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < ceiling:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
            soft = ceiling
        except (ValueError, OSError) as error:
            log.warning("Cannot raise the open-file limit from %s to %s: %s", soft, ceiling, error)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return limits
    fitting = max(1, (soft - RESERVED_DESCRIPTORS) // ports - LINGERING_PER_PORT)
    log.warning("The open-file limit (%s) is too low for %s connections per port; each port holds %s "
                "(raise the hard limit with ulimit -Hn or LimitNOFILE= to allow more)", soft,
                limits.max_connections, fitting)
    return replace(limits, max_connections=fitting)
