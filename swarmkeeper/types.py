"""The vocabulary every layer shares. No logic lives here."""

from __future__ import annotations

from typing import Any, TypeAlias

#: A decoded JSON object, as the API receives and answers it.
JSONObject: TypeAlias = dict[str, Any]

#: A backend's id: real backends count up from 0, non-real ones down from -1.
BackendId: TypeAlias = int

#: One setting's value, as stored in Backends.fds and shown by ListBackends.
SettingValue: TypeAlias = str | int | float | bool

#: The string SwarmUI shows in place of a secret setting's value (a TAB, then `<secret>`).
SECRET_PLACEHOLDER = "\t<secret>"


class RawJSON(bytes):
    """An answer already serialised (the ListBackends fast path); sent as it is."""


class GzipJSON(RawJSON):
    """An answer already serialised that may be sent gzip-compressed to a caller that accepts gzip
    (the ListBackends answer; api/views.py makes the gzip once per answer, when first asked)."""

    #: The same bytes as one gzip member, once made.
    gzipped: bytes | None = None
