"""What a user name, a role and an API key's name may be.

User names are lower-case ASCII (letters, digits and ``. _ - @``), 3 to 40 characters, starting
with a letter or digit: no look-alike letters, nothing a log line or a cookie could misread.
Errors say what is wrong without echoing the text back (it may hold control characters).
"""

from __future__ import annotations

import string

from swarmkeeper.accounts.errors import AccountError

NAME_MIN = 3
NAME_MAX = 40
KEY_NAME_MAX = 100
_NAME_CHARS = frozenset(string.ascii_lowercase + string.digits + "._-@")


def control_char(text: str) -> str | None:
    for char in text:
        if not char.isprintable():
            return f"U+{ord(char):04X}"
    return None


def check_user_name(name: str) -> str:
    """The name if it is a valid user name, else AccountError saying why."""
    if not name:
        raise AccountError("A user name is required.")
    bad = control_char(name)
    if bad is not None:
        raise AccountError(f"User names may not contain control or invisible characters (found {bad}).")
    if not NAME_MIN <= len(name) <= NAME_MAX:
        raise AccountError(f"User names are {NAME_MIN} to {NAME_MAX} characters long (got {len(name)}).")
    if name != name.lower() and name.lower().isascii():
        raise AccountError("User names are lower-case.")
    if not set(name) <= _NAME_CHARS:
        raise AccountError("User names may only hold the letters a-z, the digits 0-9 and the characters . _ - @.")
    if not name[0].isalnum():
        raise AccountError("User names start with a letter or a digit.")
    return name


def lookup_name(given: str) -> str:
    """A name as typed at login, folded the way names are stored (no validation: unknown is unknown)."""
    return given.strip().lower() if given.isascii() else given


def check_key_name(name: str) -> str:
    """An API key's label: 1 to 100 printable characters."""
    name = name.strip()
    if not name:
        raise AccountError("An API key needs a name (what it is for, e.g. 'nightly-bot').")
    bad = control_char(name)
    if bad is not None:
        raise AccountError(f"API key names may not contain control or invisible characters (found {bad}).")
    if len(name) > KEY_NAME_MAX:
        raise AccountError(f"API key names are at most {KEY_NAME_MAX} characters long (got {len(name)}).")
    return name
