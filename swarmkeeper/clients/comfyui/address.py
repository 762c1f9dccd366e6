"""A ComfyUI server's address: one validated base URL, and its websocket twin."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass


def _normalise_url(raw: str) -> str:
    """``raw`` as ``scheme://netloc[/path]``, or ``ValueError`` naming the problem."""
    text = raw.strip()
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"Invalid backend address {raw!r}: {exc}.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"Backend address must start with http:// or https:// (got {raw!r}).")
    if not parts.hostname:
        raise ValueError(f"Backend address has no host (got {raw!r}).")
    if parts.query or parts.fragment:
        raise ValueError(f"Backend address must not have a query or fragment (got {raw!r}).")
    if port == 0:
        raise ValueError(f"Backend address has port 0 (got {raw!r}).")
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}"


@dataclass(frozen=True)
class Address:
    """A validated ComfyUI base URL: ``http(s)://host[:port][/prefix]``, no trailing ``/``.

    ``Address(raw)`` normalises ``raw`` once, when built, or raises ``ValueError`` saying what
    is wrong with it.
    """

    url: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", _normalise_url(self.url))

    @classmethod
    def parse(cls, raw: str) -> Address:
        """The same as ``Address(raw)``."""
        return cls(raw)

    @property
    def ws_url(self) -> str:
        """The matching ``ws://`` or ``wss://`` base."""
        return "ws" + self.url.removeprefix("http")

    def __str__(self) -> str:
        return self.url
