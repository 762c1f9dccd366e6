"""Small network facts the server needs about this machine."""

from __future__ import annotations

import socket

#: How long a server keeps an idle client connection open. uvicorn's default is 5 s, the same as
#: httpx's idle expiry, so a client could reuse a connection just as the server closes it (the call
#: then fails with a read error). The API keeps SwarmUI's (Kestrel's default), the pool ComfyUI's
#: (aiohttp's default).
SWARM_KEEP_ALIVE_SECONDS = 130
COMFY_KEEP_ALIVE_SECONDS = 75


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something listens on ``host:port`` (SwarmUI skips such ports for backends)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.2)
        return probe.connect_ex((host, port)) == 0


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
