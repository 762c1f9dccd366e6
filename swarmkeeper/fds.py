r"""FDS (Frenetic Data Syntax), the format of SwarmUI's ``Backends.fds`` and ``Settings.fds``.

Follows FreneticLLC/FreneticUtilities' ``FDSParser`` and ``FDSSection.SaveToString``. Text in,
text out. One tab per level (shown as spaces; a tab reads as four, any consistent spacing works)::

    #Comment lines belong to the key that follows them.
    0:
        title: \x
        settings:
            OverQueue: 1
        tags:
        - list items sit at their key's indentation
        thumbnail= iVBORw0KGgo=

Escapes: ``\s`` backslash, ``\t``, ``\n``, ``\r``; ``\x`` is nothing (marks empty text, guards edge
spaces); keys also use ``\d`` dot, ``\c`` colon, ``\e`` equals, and ``\x`` before a leading ``-`` or
``>``. ``key= base64`` is bytes.

Scalars are typed by content, like ``FDSUtility.InterpretType``: text that .NET prints back
identically as a 64-bit integer is an ``int``, as a double a ``float``; ``true``/``false`` are
bools; the rest is ``str``. So the string ``"5"`` reads back as the int ``5`` (``"1.0"``, ``"01"``,
``"True"`` stay strings), a float with an integral value is written ``5`` and reads back as an
equal ``int``, and an empty list (``key:``) reads back as an empty Section; callers coerce by
schema, as SwarmUI does. Floats are written as .NET's ``double.ToString()`` (shortest round-trip,
invariant culture: ``1``, ``0.5``, ``1E+20``, ``NaN``, ``Infinity``); ints must fit 64 bits.

Where FreneticUtilities cannot read back what it writes, we differ: ``\x`` guards keys starting
with ``#``, empty bytes are ``key= \x``, ``-`` list items are unescaped, and comments indented
under a section after its last key stay there (``trailing_comments``). A UTF-8 BOM is skipped.
Unsupported: ``>`` lines (lists of lists or sections) raise FDSError; list item comments are dropped.
"""

from __future__ import annotations

import base64
import re
import sys
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from itertools import takewhile
from typing import TypeAlias

from swarmkeeper.dotnet import format_double

__all__ = ["FDSError", "Scalar", "Section", "Value", "dumps", "loads"]

Scalar: TypeAlias = str | int | float | bool | bytes

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: Deeper nesting is refused, so hostile input cannot exhaust Python's recursion limit.
MAX_DEPTH = 100
_LIST_MARKS = "-=>"
_GUARDED_KEY_START = "->#\ufeff"
_SEPARATOR = re.compile("[:=]")
_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]{0,18})")
_BASE64_IGNORED = re.compile("[ \t\r\n]")  # what .NET's Convert.FromBase64String skips
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_NO_KEYS = sys.maxsize  # an indentation no line has: the section only gathers comments


class FDSError(ValueError):
    """Malformed FDS text. ``line`` is 1-based; the message leaves the line's text out, since these
    files hold secrets in clear text and errors get logged."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"FDS line {line}: {reason}")
        self.line = line


class Section(MutableMapping[str, "Value"]):
    """An ordered FDS section. Each key may carry the ``#`` comment lines written before it.

    Equality compares keys and values only (as a mapping), not comments or order.
    """

    def __init__(self, data: Mapping[str, Value] | None = None) -> None:
        self._values: dict[str, Value] = {}
        self._comments: dict[str, list[str]] = {}
        self._trailing: list[str] = []
        if data is not None:
            self.update(data)

    def __getitem__(self, key: str) -> Value:
        return self._values[key]

    def __setitem__(self, key: str, value: Value) -> None:
        self.set(key, value)

    def __delitem__(self, key: str) -> None:
        del self._values[key]
        self._comments.pop(key, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Section({self._values!r})"

    def set(self, key: str, value: Value, *, comments: Sequence[str] | None = None) -> None:
        """Set ``key`` (a new key goes last). ``comments`` replaces its comment lines (text after
        the ``#``); ``None`` keeps the existing ones."""
        if not isinstance(key, str):
            raise TypeError(f"FDS keys are strings, not {type(key).__name__}")
        self._values[key] = value
        if comments is not None:
            self._comments[key] = _clean_comments(comments)

    def comments(self, key: str) -> list[str]:
        """The comment lines before ``key``, without their ``#`` (a copy)."""
        if key not in self._values:
            raise KeyError(key)
        return list(self._comments.get(key, ()))

    @property
    def trailing_comments(self) -> list[str]:
        """Comment lines after the last key (a copy; assign a new list to change them)."""
        return list(self._trailing)

    @trailing_comments.setter
    def trailing_comments(self, comments: Sequence[str]) -> None:
        self._trailing = _clean_comments(comments)


Value: TypeAlias = Scalar | list[Scalar] | Section


def _clean_comments(comments: Sequence[str]) -> list[str]:
    """Comments as they read back: one line each, tabs expanded, trailing spaces dropped."""
    if isinstance(comments, str):
        raise TypeError("comments are a sequence of lines, not one string")
    for comment in comments:
        if "\n" in comment or "\r" in comment:
            raise ValueError(f"a comment is a single line: {comment!r}")
    return [_expand_tabs(comment).rstrip(" ") for comment in comments]


def _expand_tabs(text: str) -> str:
    """FreneticUtilities' rule: a tab is four spaces, but ``>`` and a tab take four columns."""
    return text.replace(">\t", ">   ").replace("\t", "    ")


@dataclass(frozen=True, slots=True)
class _Line:
    number: int
    indent: int
    text: str  # without indentation and trailing spaces; never empty

    @property
    def is_comment(self) -> bool:
        return self.text[0] == "#"


def loads(text: str) -> Section:
    """Parse a whole FDS file; malformed text raises :class:`FDSError` naming the line."""
    return _Parser(_lines_of(text)).section(0, -1, 0)


def _lines_of(text: str) -> list[_Line]:
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    lines = []
    for number, raw in enumerate(_expand_tabs(text).split("\n"), start=1):
        body = raw.lstrip(" ")
        if body:
            lines.append(_Line(number, len(raw) - len(body), body.rstrip(" ")))
    return lines


class _Parser:
    """Recursive descent over the non-blank lines, checking what FDSParser checks."""

    def __init__(self, lines: list[_Line]) -> None:
        self.lines = lines
        self.pos = 0

    def section(self, indent: int, owner: int, depth: int) -> Section:
        """Keys at ``indent``. Comments left after the last key stay only if indented deeper than
        ``owner`` (the indentation of this section's own key); the rest go back to the caller."""
        result = Section()
        pending: list[_Line] = []
        while self.pos < len(self.lines):
            line = self.lines[self.pos]
            if not line.is_comment and line.indent < indent:
                break
            self.pos += 1
            if line.is_comment:
                pending.append(line)
                continue
            key, value = self.entry(line, indent, depth)
            result.set(key, value, comments=[comment.text[1:] for comment in pending])
            pending = []
        kept = list(takewhile(lambda comment: comment.indent > owner, pending))
        self.pos -= len(pending) - len(kept)
        result.trailing_comments = [comment.text[1:] for comment in kept]
        return result

    def entry(self, line: _Line, indent: int, depth: int) -> tuple[str, Value]:
        if line.text[0] in _LIST_MARKS:
            raise FDSError(line.number, "a list item needs a 'key:' line above it")
        if line.indent > indent:
            raise FDSError(line.number, f"indented {line.indent} spaces where {indent} were expected")
        match = _SEPARATOR.search(line.text)
        if match is None:
            raise FDSError(line.number, "expected 'key: value', 'key= base64' or 'key:'")
        if match.start() == 0:
            raise FDSError(line.number, "empty key (write \\x for an intentionally empty key)")
        key = _unescape_key(line.text[: match.start()])
        rest = line.text[match.end() :].lstrip(" ")
        if rest:
            return key, _scalar(line, match.group(), rest)
        if match.group() == "=":
            raise FDSError(line.number, "binary data must follow '=' on the same line")
        return key, self.block(line, indent, depth + 1)

    def block(self, line: _Line, indent: int, depth: int) -> Section | list[Scalar]:
        """The value of a bare ``key:``: deeper lines, a list, or else an empty section."""
        if depth > MAX_DEPTH:
            raise FDSError(line.number, f"sections nested deeper than {MAX_DEPTH} levels")
        upcoming = self.peek()
        if upcoming is not None and upcoming.indent == indent and upcoming.text[0] in _LIST_MARKS:
            return self.items(indent)
        child = upcoming.indent if upcoming is not None and upcoming.indent > indent else _NO_KEYS
        return self.section(child, indent, depth)

    def peek(self) -> _Line | None:
        """The next line that is not a comment, without consuming anything."""
        index = self.pos
        while index < len(self.lines) and self.lines[index].is_comment:
            index += 1
        return self.lines[index] if index < len(self.lines) else None

    def items(self, indent: int) -> list[Scalar]:
        """List items at ``indent``; comments between them are dropped, those after them kept."""
        result: list[Scalar] = []
        skipped = 0
        while self.pos < len(self.lines):
            line = self.lines[self.pos]
            if line.is_comment:
                skipped += 1
            elif line.indent < indent or (line.indent == indent and line.text[0] not in _LIST_MARKS):
                break
            else:
                result.append(_item(line, indent))
                skipped = 0
            self.pos += 1
        self.pos -= skipped
        return result


def _item(line: _Line, indent: int) -> Scalar:
    if line.indent > indent:
        raise FDSError(line.number, f"indented {line.indent} spaces inside a list at {indent}")
    if line.text[0] == ">":
        raise FDSError(line.number, "lists of lists or of sections ('>') are not supported")
    return _scalar(line, line.text[0], line.text[1:].lstrip(" "))


def _scalar(line: _Line, mark: str, text: str) -> Scalar:
    """The value after ``:`` or ``-`` (typed text), or after ``=`` (base64 bytes)."""
    text = _unescape(text)
    if mark != "=":
        return _interpret(text)
    try:
        return base64.b64decode(_BASE64_IGNORED.sub("", text), validate=True)
    except ValueError as error:
        raise FDSError(line.number, f"invalid base64 data ({error})") from None


def _interpret(text: str) -> Scalar:
    """FDSUtility.InterpretType: a number only if .NET would print it back as exactly ``text``."""
    if _INTEGER.fullmatch(text) and text != "-0" and INT64_MIN <= int(text) <= INT64_MAX:
        return int(text)
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None and format_double(number) == text:
        return number
    return {"true": True, "false": False}.get(text, text)


def _unescape(text: str) -> str:
    # Sequential replacement, in FDSUtility.UnEscape's order, so odd input reads as it does there.
    if "\\" not in text:
        return text
    for code, char in (("\\t", "\t"), ("\\n", "\n"), ("\\r", "\r"), ("\\x", ""), ("\\s", "\\")):
        text = text.replace(code, char)
    return text


def _unescape_key(text: str) -> str:
    return _unescape(text.replace("\\d", ".").replace("\\c", ":").replace("\\e", "="))


def dumps(section: Section) -> str:
    """Canonical FDS text, as SwarmUI writes it. Raises TypeError for a value FDS cannot hold
    (lists hold scalars only here) and ValueError for an int outside 64 bits. A lone surrogate,
    which no UTF-8 file can hold, is written as U+FFFD: one bad text in memory never makes every
    save fail (the API refuses such text at the door, textcheck.py)."""
    lines: list[str] = []
    _write_section(section, 0, lines)
    return _LONE_SURROGATE.sub("\ufffd", "".join(line + "\n" for line in lines))


def _write_section(section: Section, depth: int, lines: list[str]) -> None:
    tabs = "\t" * depth
    for key, value in section.items():
        lines.extend(f"{tabs}#{comment}" for comment in section.comments(key))
        _write_entry(tabs + _escape_key(key), value, depth, lines)
    lines.extend(f"{tabs}#{comment}" for comment in section.trailing_comments)


def _write_entry(head: str, value: Value, depth: int, lines: list[str]) -> None:
    if isinstance(value, Section):
        lines.append(head + ":")
        _write_section(value, depth + 1, lines)
    elif isinstance(value, list):
        lines.append(head + ":")
        lines.extend("\t" * depth + _list_item(item) for item in value)
    elif isinstance(value, bytes):
        lines.append(head + "= " + (base64.b64encode(value).decode() if value else "\\x"))
    else:
        lines.append(head + ": " + _text(value))


def _list_item(item: Scalar) -> str:
    if isinstance(item, bytes):
        return "= " + base64.b64encode(item).decode()
    if isinstance(item, list | Section):
        raise TypeError("FDS lists hold scalars here, not lists or sections")
    return "- " + _text(item)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError(f"{value} does not fit the 64-bit integers FDS readers use")
        return str(int(value))
    if isinstance(value, float):
        return format_double(value)
    if isinstance(value, str):
        return _escape(value)
    raise TypeError(f"FDS cannot hold a {type(value).__name__} (use a Section for mappings)")


def _escape(text: str) -> str:
    if not text:
        return "\\x"
    text = text.replace("\\", "\\s").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    if text.endswith(" "):
        text += "\\x"
    return "\\x" + text if text.startswith(" ") else text


def _escape_key(key: str) -> str:
    text = _escape(key)
    if text[0] in _GUARDED_KEY_START:
        text = "\\x" + text
    return text.replace(".", "\\d").replace(":", "\\c").replace("=", "\\e")
