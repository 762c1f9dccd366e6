"""What of a call's parameters may go into the audit log: everything but secrets.

A parameter is secret by its name (``password``, ``oldPassword``, ``token``, ``key``...); a
backend setting is secret when its type's schema says so (``is_secret``, or ``private``: values
that may hold one, such as ``OtherHeaders``' header lines) or by its name. Secret
values become ``<redacted>`` (``"\\t<secret>"`` for settings, as ListBackends shows them); long
texts are clipped, and a huge body is recorded by its keys alone.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from swarmkeeper.types import SECRET_PLACEHOLDER, JSONObject

REDACTED = "<redacted>"
MAX_TEXT = 500
MAX_JSON = 16384
MAX_DEPTH = 8
_SECRET_WORDS = ("password", "secret", "token", "authorization", "apikey", "api_key", "credential")


def is_secret_name(name: str) -> bool:
    lower = name.lower()
    return lower in ("key", "pw") or any(word in lower for word in _SECRET_WORDS)


def _empty(value: Any) -> bool:
    return value is None or value == ""


def _clip(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "..."
    if depth >= MAX_DEPTH and isinstance(value, dict | list):
        return "..."
    if isinstance(value, dict):
        return {name: REDACTED if is_secret_name(str(name)) and not _empty(item) else _clip(item, depth + 1)
                for name, item in value.items()}
    if isinstance(value, list):
        return [_clip(item, depth + 1) for item in value]
    return value


def _settings(settings: JSONObject, secret_settings: Collection[str]) -> JSONObject:
    return {name: SECRET_PLACEHOLDER if (name in secret_settings or is_secret_name(name)) and not _empty(value)
            else _clip(value, 1) for name, value in settings.items()}


def redact(params: JSONObject, secret_settings: Collection[str] = ()) -> JSONObject:
    """The parameters with every secret replaced."""
    clean: JSONObject = {}
    for name, value in params.items():
        if is_secret_name(name):
            clean[name] = value if _empty(value) else REDACTED
        elif name == "settings" and isinstance(value, dict):
            clean[name] = _settings(value, secret_settings)
        else:
            clean[name] = _clip(value)
    return clean


def to_json(changes: JSONObject) -> str:
    """The stored form; a body too big to keep is kept as its list of keys."""
    text = json.dumps(changes, ensure_ascii=False, separators=(",", ":"), default=str)
    if len(text) <= MAX_JSON:
        return text
    return json.dumps({"_truncated": True, "keys": sorted(str(name) for name in changes)[:100]})
