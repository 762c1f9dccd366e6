"""Settings declarations: one frozen dataclass per backend type (or Settings.fds section).

A backend type declares its settings once, as SwarmUI's C# classes do with fields and
attributes::

    @dataclass(frozen=True)
    class ComfyUIAPISettings:
        Address: str = text("", "The address of the ComfyUI instance.", placeholder="...")
        OverQueue: int = integer(1, "How many extra requests may queue up on this backend.")

That one declaration drives ``ListBackendTypes`` (:meth:`Schema.describe`), what
``ListBackends`` shows (:meth:`Schema.public`, secrets masked; values that may hold secrets
masked for callers who may not edit backends), the strict coercion of what the
web UI sends (:meth:`Schema.overlay`), and the ``Backends.fds`` section with its comment lines
(:meth:`Schema.to_fds` / :meth:`Schema.from_stored`). Code reads values as typed attributes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

from swarmkeeper import dotnet, fds
from swarmkeeper.exceptions import SettingsError
from swarmkeeper.textcheck import unstorable
from swarmkeeper.types import SECRET_PLACEHOLDER, JSONObject, SettingValue

S = TypeVar("S")

#: Longest text a setting (or a title) may hold; SwarmUI has no limit, a 1 MB title helps nobody.
MAX_TEXT_LENGTH = 65536


class Private(StrEnum):
    """Whether a setting that is not a SwarmUI secret may still hold one (a token in a header line),
    and how it is masked for callers who may not edit backends and in the audit log. Callers who
    may edit backends see it as it is (unlike a ``secret``, which nobody sees)."""

    NO = ""
    WHOLE = "whole"  # the whole value is masked
    HEADER_VALUES = "header_values"  # ``Name: value`` lines: the names are shown, each value masked


#: What a masked value (or part of one) reads as.
MASKED = "<secret>"


class SettingKind(StrEnum):
    """The ``type`` names ListBackendTypes uses (``boolean``, not ``bool``, since 2024-08)."""

    TEXT = "text"
    INTEGER = "integer"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    DROPDOWN = "dropdown"


@dataclass(frozen=True)
class Setting:
    """One declared setting: everything ListBackendTypes says of it, and how to parse it."""

    name: str
    kind: SettingKind
    default: SettingValue
    description: str = ""
    placeholder: str = ""
    secret: bool = False
    options: tuple[tuple[str, str], ...] | None = None  # (value, display name) for dropdowns
    private: Private = Private.NO
    #: A text setting that may hold line breaks and tabs (other control characters never).
    multiline: bool = False

    def describe(self) -> JSONObject:
        """The setting's entry in ListBackendTypes, all seven keys always present."""
        values = names = None
        if self.options is not None:
            values = [value for value, _ in self.options]
            names = [name for _, name in self.options]
        return {
            "name": self.name,
            "type": str(self.kind),
            "description": self.description,
            "placeholder": self.placeholder,
            "is_secret": self.secret,
            "values": values,
            "value_names": names,
        }

    def public(self, value: SettingValue, *, editor: bool) -> SettingValue:
        """The value as the API shows it: a non-empty secret becomes the placeholder; a private
        value is masked unless the caller may edit backends (``editor``)."""
        if self.secret and value != "":
            return SECRET_PLACEHOLDER
        if self.private is not Private.NO and not editor:
            return self.masked(value)
        return value

    def masked(self, value: SettingValue) -> SettingValue:
        """A private value as those who may not edit it see it (unchanged if not private or empty)."""
        if self.private is Private.NO or value == "":
            return value
        if self.private is Private.HEADER_VALUES and isinstance(value, str):
            return "\n".join(_masked_header(line) for line in value.split("\n"))
        return MASKED

    def coerce(self, raw: Any) -> SettingValue:
        """Parse an incoming value (the web UI sends numbers as strings); SettingsError if it can't."""
        if self.kind is SettingKind.BOOLEAN:
            return self._parse(raw, dotnet.parse_bool, "Boolean")
        if self.kind is SettingKind.INTEGER:
            return self._parse(raw, dotnet.parse_int, "Int32")
        if self.kind is SettingKind.DECIMAL:
            return self._parse(raw, dotnet.parse_float, "Double")
        text = _text_form(raw)
        if len(text) > MAX_TEXT_LENGTH:
            raise SettingsError(self.name, f"Setting '{self.name}' is too long ({len(text)} characters, "
                                           f"the limit is {MAX_TEXT_LENGTH}).")
        if self.options is not None and text not in (value for value, _ in self.options):
            allowed = ", ".join(value for value, _ in self.options)
            raise SettingsError(self.name, f"Invalid value '{self._shown(text)}' for setting '{self.name}', "
                                           f"must be one of: {allowed}")
        return text

    def accept(self, raw: Any) -> SettingValue:
        """An incoming value from the API: :meth:`coerce`, after refusing text that cannot be
        stored (control characters outside a multi-line setting's line breaks and tabs, lone
        surrogates). Files are read with :meth:`coerce` alone."""
        problem = unstorable(_text_form(raw), multiline=self.multiline)
        if problem is not None:
            raise SettingsError(self.name, f"Setting '{self.name}' contains {problem}, which cannot be stored.")
        return self.coerce(raw)

    def _shown(self, text: str) -> str:
        """A refused value as an error may quote it: never a secret's (errors reach logs and the audit log)."""
        return MASKED if self.secret or self.private is not Private.NO else _clip(text)

    def _parse(self, raw: Any, parser: Callable[[str], SettingValue | None], type_name: str) -> SettingValue:
        if isinstance(raw, bool) and self.kind is SettingKind.BOOLEAN:
            return raw
        text = dotnet.to_text(raw)
        parsed = parser(text)
        if parsed is None:
            raise SettingsError(self.name, f"Invalid value '{self._shown(text)}' for setting '{self.name}', "
                                           f"must be type '{type_name}'")
        return float(parsed) if self.kind is SettingKind.DECIMAL else parsed


def _text_form(raw: Any) -> str:
    """Text settings take any value's text; booleans in the lower-case form FDS files use."""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return dotnet.to_text(raw)


def _masked_header(line: str) -> str:
    """``Name: value`` as ``Name: <secret>``; a line that is not a header line is masked whole."""
    name, colon, value = line.partition(":")
    if not line.strip():
        return line
    if not colon or not name.strip() or any(c in name for c in " \t\r"):
        return MASKED
    return f"{name}: {MASKED}" if value.strip() else f"{name}:"


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


# --- declaration helpers: each returns a dataclass field carrying its Setting as metadata ---

def _declare(kind: SettingKind, default: SettingValue, description: str, **extra: Any) -> Any:
    return dataclasses.field(default=default, metadata={"setting": (kind, description, extra)})


def text(default: str = "", description: str = "", *, placeholder: str = "", secret: bool = False,
         private: Private = Private.NO, multiline: bool = False) -> Any:
    """A text setting; ``secret=True`` masks it in every API answer; ``private`` masks it for
    callers who may not edit backends, and in the audit log (see :class:`Private`);
    ``multiline=True`` lets it hold line breaks and tabs."""
    return _declare(SettingKind.TEXT, default, description, placeholder=placeholder, secret=secret, private=private,
                    multiline=multiline)


def integer(default: int, description: str = "") -> Any:
    return _declare(SettingKind.INTEGER, default, description)


def decimal(default: float, description: str = "") -> Any:
    return _declare(SettingKind.DECIMAL, float(default), description)


def boolean(default: bool, description: str = "") -> Any:
    return _declare(SettingKind.BOOLEAN, default, description)


def dropdown(default: str, description: str, options: Sequence[tuple[str, str]]) -> Any:
    """A choice among ``(value, display name)`` pairs."""
    return _declare(SettingKind.DROPDOWN, default, description, options=tuple(options))


class Schema(Generic[S]):
    """The settings of one dataclass, in declaration order, with everything built from them."""

    def __init__(self, cls: type[S]) -> None:
        self.cls = cls
        self.settings: tuple[Setting, ...] = tuple(_setting_of(f) for f in dataclasses.fields(cls))  # type: ignore[arg-type]
        self.by_name: dict[str, Setting] = {s.name: s for s in self.settings}

    def defaults(self) -> S:
        return self.cls()

    def describe(self) -> list[JSONObject]:
        return [setting.describe() for setting in self.settings]

    def as_dict(self, values: S) -> dict[str, SettingValue]:
        return {s.name: getattr(values, s.name) for s in self.settings}

    def public(self, values: S, *, editor: bool) -> JSONObject:
        """Values as ListBackends shows them, secrets masked (private ones too, unless ``editor``)."""
        return {s.name: s.public(getattr(values, s.name), editor=editor) for s in self.settings}

    def overlay(self, current: S, incoming: Mapping[str, Any]) -> S:
        """SwarmUI's partial overlay: exact names only, unknown keys ignored, an echoed secret
        placeholder keeps the stored secret. All or nothing: the first bad value raises
        SettingsError and nothing is changed."""
        changes: dict[str, SettingValue] = {}
        for name, raw in incoming.items():
            setting = self.by_name.get(name)
            if setting is None or (setting.secret and raw == SECRET_PLACEHOLDER):
                continue
            changes[name] = setting.accept(raw)
        return dataclasses.replace(current, **changes)  # type: ignore[type-var]

    def from_stored(self, stored: Mapping[str, Any]) -> tuple[S, list[str]]:
        """Settings read from a file: defaults overlaid with what parses; a warning per value that
        does not (that setting keeps its default), so one bad line never loses a backend."""
        changes: dict[str, SettingValue] = {}
        warnings: list[str] = []
        for name, raw in stored.items():
            setting = self.by_name.get(name)
            if setting is None:
                continue
            try:
                changes[name] = _lenient(setting).coerce(raw)
            except SettingsError as error:
                warnings.append(f"{error.message}; using the default {setting.default!r}")
        return dataclasses.replace(self.defaults(), **changes), warnings  # type: ignore[type-var]

    def to_fds(self, values: S) -> fds.Section:
        """Every setting, in declaration order, each after its description as comment lines."""
        section = fds.Section()
        for setting in self.settings:
            comments = setting.description.split("\n") if setting.description else []
            section.set(setting.name, getattr(values, setting.name), comments=comments)
        return section


def _lenient(setting: Setting) -> Setting:
    """Files may hold dropdown values we do not list (SwarmUI never checks them): accept them."""
    return dataclasses.replace(setting, options=None) if setting.options is not None else setting


def _setting_of(field: dataclasses.Field[Any]) -> Setting:
    if "setting" not in field.metadata:
        raise TypeError(f"Setting field '{field.name}' must be declared with text(), integer(), ...")
    kind, description, extra = field.metadata["setting"]
    default = field.default
    if default is dataclasses.MISSING:
        raise TypeError(f"Setting field '{field.name}' needs a default value")
    return Setting(name=field.name, kind=kind, default=default, description=description, **extra)


_SCHEMAS: dict[type[Any], Schema[Any]] = {}


def schema_of(cls: type[S]) -> Schema[S]:
    """The (cached) schema of a settings dataclass."""
    schema = _SCHEMAS.get(cls)
    if schema is None:
        schema = _SCHEMAS[cls] = Schema(cls)
    return schema
