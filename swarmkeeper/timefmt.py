"""SwarmUI's "time since used" text (FreneticUtilities' SimpleFormat with addAgo, no ms)."""

from __future__ import annotations

_UNITS = (("year", 365 * 86400), ("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def _part(value: int, unit: str) -> str:
    return f"{value} {unit}" if value == 1 else f"{value} {unit}s"


def time_since(seconds: float | None) -> str:
    """``"Never"``, ``"12 seconds ago"``, ``"3 minutes and 1 second ago"``, ``"2 hours ago"``;
    under one whole second, SwarmUI's oddity ``"0 seconds from now"``."""
    if seconds is None:
        return "Never"
    whole = int(seconds)
    if whole <= 0:
        return "0 seconds from now"
    for index, (unit, size) in enumerate(_UNITS):
        if whole >= size:
            first = whole // size
            text = _part(first, unit)
            if index + 1 < len(_UNITS):
                next_unit, next_size = _UNITS[index + 1]
                second = (whole % size) // next_size
                if second:
                    text += " and " + _part(second, next_unit)
            return text + " ago"
    return "0 seconds from now"
