r"""Text that cannot be stored, found before it gets in (issue 13, point 5).

JSON can carry what no file or database here can hold: a lone surrogate (``"\ud800"`` is valid
JSON, and no UTF-8 encoder takes it). NUL and other control characters can be stored, but in a
title or a one-line setting they only break or fool whatever reads them later. The API refuses
them at the door: every parameter is one line of text, with no control character and no lone
surrogate; a multi-line field (a few settings) may also hold line breaks and tabs; and nothing
anywhere in a request's raw input (keys included) may hold a lone surrogate or NUL.
"""

from __future__ import annotations

import re
from typing import Any

#: Lone surrogates, and the C0 and C1 control characters and DEL.
_SINGLE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
#: The same, with line breaks and tabs allowed.
_MULTI_LINE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
#: What is refused anywhere: lone surrogates and NUL.
_NEVER = re.compile("[\x00\ud800-\udfff]")


def unstorable(text: str, *, multiline: bool = False) -> str | None:
    """What makes ``text`` unfit to store, in words ("a lone surrogate (U+D800) at position 3"),
    or None when it is fine."""
    match = (_MULTI_LINE if multiline else _SINGLE_LINE).search(text)
    return None if match is None else _describe(match)


def unstorable_in(body: dict[str, Any]) -> tuple[str, str] | None:
    """The first lone surrogate or NUL anywhere in a request's parameters (names included), as
    (what holds it, what it is): ("value for parameter 'settings.Address'", "NUL (U+0000) at
    position 0"), or ("parameter name in 'settings'", ...). None when there is none."""
    pending: list[tuple[str, Any]] = [("", body)]
    while pending:
        path, item = pending.pop()
        if isinstance(item, str):
            match = _NEVER.search(item)
            if match is not None:
                return f"value for parameter '{path}'", _describe(match)
        elif isinstance(item, dict):
            for key, inner in item.items():
                match = _NEVER.search(key)
                if match is not None:
                    return f"parameter name in '{path}'" if path else "parameter name", _describe(match)
                pending.append((f"{path}.{key}" if path else key, inner))
        elif isinstance(item, list):
            pending.extend((f"{path}[{index}]", inner) for index, inner in enumerate(item))
    return None


def _describe(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if code == 0:
        kind = "NUL"
    elif 0xD800 <= code < 0xE000:
        kind = "a lone surrogate"
    else:
        kind = "a control character"
    return f"{kind} (U+{code:04X}) at position {match.start()}"
