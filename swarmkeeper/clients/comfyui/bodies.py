"""HTTP bodies: reading an answer under its cap, JSON in and out, and the reason in an error answer."""

from __future__ import annotations

import contextlib
import json
from typing import Any, TypeVar

import httpx
import orjson

from swarmkeeper.clients.comfyui.boundary import MIB
from swarmkeeper.clients.errors import ComfyProtocolError

T = TypeVar("T")


async def read_capped(response: httpx.Response, limit: int) -> bytes:
    """The body, refusing to hold more than ``limit`` bytes."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ComfyProtocolError(f"The backend's answer is too large ({int(declared) // MIB} MiB).")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise ComfyProtocolError(f"The backend's answer is larger than {limit // MIB} MiB.")
        chunks.append(chunk)
    return b"".join(chunks)


def encode_json(value: Any) -> bytes:
    """A JSON request body, encoded as httpx encodes ``json=``."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def decode_json(raw: bytes, route: str) -> Any:
    """Parse a JSON body, naming what came instead when it is not JSON. orjson first (a ComfyUI's
    ~300 KB ``object_info`` in a fifth of the time: 1,000 backends starting read 1,000 of them);
    what it refuses and the standard library takes (``NaN``, ``Infinity``, integers past 64 bits,
    lone surrogates, all of which Python's ``json.dumps`` in ComfyUI may write) by the standard library."""
    with contextlib.suppress(orjson.JSONDecodeError):
        return orjson.loads(raw)
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        start = raw[:64].lstrip().lower()
        what = "HTML" if start.startswith((b"<!doctype", b"<html")) else "something that is not JSON"
        raise ComfyProtocolError(f"The backend answered {route} with {what} - is this ComfyUI?") from None


def error_message(status: int, body: Any) -> str:
    """A one-line reason from ComfyUI's error JSON (``error.message`` plus node errors)."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        details = [error["message"]]
        node_errors = body.get("node_errors") or {}
        for node_id, info in node_errors.items() if isinstance(node_errors, dict) else ():
            for item in (info or {}).get("errors", [])[:3]:
                details.append(f"node {node_id}: {item.get('message', '')} ({item.get('details', '')})")
        return "; ".join(details)[:500]
    if isinstance(error, str):
        return error[:500]
    text = body if isinstance(body, str) else json.dumps(body)
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"The backend answered HTTP {status}" + (f": {first[:200]}" if first else ".")


def expect(value: object, kind: type[T], route: str) -> T:
    """Check the top-level shape of a decoded answer."""
    if not isinstance(value, kind):
        raise ComfyProtocolError(f"The backend answered {route} with an unexpected shape - is this ComfyUI?")
    return value
