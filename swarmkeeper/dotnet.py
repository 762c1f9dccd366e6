"""How SwarmUI, a .NET program, turns JSON values into text and parses them back.

SwarmUI binds every API parameter by rendering the JSON value as text and parsing that text with
.NET's rules; its settings loader is just as lenient. Clients depend on the quirks (the web UI
sends numbers as strings, `" 5"` is a valid Int32, `1` is not a valid Boolean), so they are
reproduced here, in one place, as pure functions.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

_WHITE = "\t\n\v\f\r "
_INTEGER = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_INT_RANGES = {32: (-(2**31), 2**31 - 1), 64: (-(2**63), 2**63 - 1)}


def to_text(value: Any) -> str:
    """Render a decoded JSON value as .NET's ``JToken.ToString()`` would."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        return format_double(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def format_double(value: float) -> str:
    """.NET's ``double.ToString()``: shortest round-trip digits, exponent form when the decimal
    point would sit more than max(digits, 15) places right or more than 3 zeros left."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        return sign + "0"
    digits, scale = _shortest_digits(abs(value))
    if scale > max(len(digits), 15) or scale < -3:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}E{'-' if scale < 1 else '+'}{abs(scale - 1):02d}"
    if scale <= 0:
        return f"{sign}0.{'0' * -scale}{digits}"
    whole, fraction = digits[:scale].ljust(scale, "0"), digits[scale:]
    return sign + whole + ("." + fraction if fraction else "")


def _shortest_digits(value: float) -> tuple[str, int]:
    """``(digits, scale)`` with ``value == 0.<digits> * 10**scale``, from Python's repr, which
    picks the same shortest round-trip digits as .NET Core 3.0+."""
    mantissa, _, exponent = repr(value).partition("e")
    whole, _, fraction = mantissa.partition(".")
    raw = whole + fraction
    significant = raw.lstrip("0")
    scale = len(whole) + int(exponent or 0) - (len(raw) - len(significant))
    return significant.rstrip("0"), scale


def parse_int(text: str, bits: int = 32) -> int | None:
    """``Int32.Parse``/``Int64.Parse``: optional surrounding white space and sign, digits only."""
    stripped = text.strip(_WHITE)
    if len(stripped) > 24 or not _INTEGER.fullmatch(stripped):
        return None
    number = int(stripped)
    low, high = _INT_RANGES[bits]
    return number if low <= number <= high else None


def parse_bool(text: str) -> bool | None:
    """``Boolean.Parse``: ``true`` or ``false`` in any letter case, surrounding white space allowed."""
    lowered = text.strip(_WHITE + "\0").lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    return None


def parse_float(text: str) -> float | None:
    """``Double.Parse`` for ordinary decimal text (no NaN or infinities, which no setting wants)."""
    stripped = text.strip(_WHITE)
    if len(stripped) > 400 or not _FLOAT.fullmatch(stripped):
        return None
    number = float(stripped)
    return number if math.isfinite(number) else None
