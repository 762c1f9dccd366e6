"""Route declarations: a route is declared once, and that drives dispatch, parameter binding,
the permission check and the API docs.

    routes = RouteTable()

    @routes.route("ListBackends", flag=VIEW_BACKENDS_LIST, user_update=False)
    async def list_backends(call: APICall,
                            nonreal: Annotated[bool, "Include non-real backends."] = False) -> JSONObject:
        \"\"\"Returns a list of currently registered backends.\"\"\"

Parameters come from the handler's signature, as SwarmUI's come from its C# method's: each named
parameter is read from the body key of the same name and coerced with .NET's rules (dotnet.py),
in declaration order, the first failure answered as SwarmUI answers it. Text that cannot be
stored is refused first (textcheck.py): the body holds no lone surrogate or NUL anywhere, and a
parameter is one line without control characters.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NewType, TypeVar

from starlette.requests import HTTPConnection

from swarmkeeper import dotnet
from swarmkeeper.api.permissions import PermissionFlag
from swarmkeeper.api.sessions import Session
from swarmkeeper.api.users import User
from swarmkeeper.exceptions import APIError
from swarmkeeper.textcheck import unstorable, unstorable_in
from swarmkeeper.types import JSONObject, RawJSON

if TYPE_CHECKING:
    from swarmkeeper.services import Services

#: A 64-bit integer parameter (plain ``int`` is SwarmUI's Int32).
Int64 = NewType("Int64", int)
#: A parameter that receives the whole request body, minus ``session_id`` (SwarmUI's JObject).
RawInput = NewType("RawInput", dict[str, Any])

Handler = Callable[..., Awaitable[JSONObject | RawJSON | None]]
H = TypeVar("H", bound=Handler)


class ParamType(StrEnum):
    """The .NET type names SwarmUI's error texts use."""

    INT32 = "Int32"
    INT64 = "Int64"
    BOOLEAN = "Boolean"
    STRING = "String"
    DOUBLE = "Double"
    RAW = "JObject"


_PARAM_TYPES: dict[Any, ParamType] = {
    int: ParamType.INT32, Int64: ParamType.INT64, bool: ParamType.BOOLEAN, str: ParamType.STRING,
    float: ParamType.DOUBLE, RawInput: ParamType.RAW,
}
_PARSERS: dict[ParamType, Callable[[str], Any]] = {
    ParamType.INT32: dotnet.parse_int,
    ParamType.INT64: lambda text: dotnet.parse_int(text, 64),
    ParamType.BOOLEAN: dotnet.parse_bool,
    ParamType.STRING: lambda text: text,
    ParamType.DOUBLE: dotnet.parse_float,
}
REQUIRED: Any = inspect.Parameter.empty


@dataclass(frozen=True)
class Param:
    name: str
    type: ParamType
    default: Any = REQUIRED
    description: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def bind(self, body: JSONObject, raw: JSONObject) -> Any:
        """This parameter's value from the body, or APIError with SwarmUI's exact text."""
        if self.type is ParamType.RAW:
            return raw
        if self.name not in body:
            if self.required:
                raise APIError(f"Missing required parameter '{self.name}'")
            return self.default
        text = dotnet.to_text(body[self.name])
        problem = unstorable(text)
        if problem is not None:
            raise APIError(f"Invalid value for parameter '{self.name}': it contains {problem}, "
                           "which cannot be stored.")
        value = _PARSERS[self.type](text)
        if value is None:
            shown = text if len(text) <= 200 else text[:200] + "..."
            raise APIError(f"Invalid value '{shown}' for parameter '{self.name}', must be type '{self.type}'")
        return value


@dataclass
class APICall:
    """What a handler knows of the call it answers."""

    services: Services
    user: User
    session: Session | None
    #: The request body without ``session_id``.
    raw: JSONObject
    connection: HTTPConnection
    #: For websocket routes: send one JSON message to the client.
    send: Callable[[JSONObject], Awaitable[None]] | None = None


@dataclass(frozen=True)
class Route:
    name: str
    handler: Handler
    flag: PermissionFlag
    params: tuple[Param, ...]
    description: str = ""
    #: Refreshes the session's last-used time (SwarmUI's "user update" routes).
    user_update: bool = True
    needs_session: bool = True
    websocket: bool = False
    #: An example of the answer, for the API docs.
    returns: str = ""
    #: The module that declared it (kept when a feature wraps the handler): its API docs page.
    module: str = ""

    def bind(self, body: JSONObject, raw: JSONObject) -> dict[str, Any]:
        """The handler's arguments; first, no text anywhere in the body (bound or not: the raw
        input reaches handlers and the audit log) may hold a lone surrogate or NUL."""
        found = unstorable_in(raw)
        if found is not None:
            raise APIError(f"Invalid {found[0]}: it contains {found[1]}, which cannot be stored.")
        return {param.name: param.bind(body, raw) for param in self.params}


def params_of(handler: Handler) -> tuple[Param, ...]:
    """Read a handler's parameters (after the first, the APICall) from its signature."""
    hints = typing.get_type_hints(handler, include_extras=True)
    params = []
    for parameter in list(inspect.signature(handler).parameters.values())[1:]:
        hint = hints.get(parameter.name, str)
        description = ""
        if typing.get_origin(hint) is typing.Annotated:
            hint, *notes = typing.get_args(hint)
            description = " ".join(str(note) for note in notes)
        if hint not in _PARAM_TYPES:
            raise TypeError(f"{handler.__name__}: parameter '{parameter.name}' has unsupported type {hint!r}")
        params.append(Param(parameter.name, _PARAM_TYPES[hint], parameter.default, description))
    return tuple(params)


class RouteTable:
    """Route names map to routes, case-insensitively, as SwarmUI matches them."""

    def __init__(self) -> None:
        self._routes: dict[str, Route] = {}

    def route(self, name: str, *, flag: PermissionFlag, user_update: bool = True, needs_session: bool = True,
              websocket: bool = False, returns: str = "") -> Callable[[H], H]:
        """Declare a route; ``flag`` is required, so no route exists without a permission."""

        def declare(handler: H) -> H:
            self.add(Route(name=name, handler=handler, flag=flag, params=params_of(handler),
                           description=inspect.cleandoc(handler.__doc__ or ""), user_update=user_update,
                           needs_session=needs_session, websocket=websocket, returns=inspect.cleandoc(returns),
                           module=handler.__module__))
            return handler

        return declare

    def add(self, route: Route) -> None:
        key = route.name.lower()
        if key in self._routes:
            raise ValueError(f"API route '{route.name}' is declared twice.")
        self._routes[key] = route

    def include(self, other: RouteTable) -> None:
        for route in other:
            self.add(route)

    def wrap(self, wrapper: Callable[[Route], Handler]) -> None:
        """Give every route the handler ``wrapper(route)`` returns (which usually calls
        ``route.handler``): how a feature adds behaviour around calls, such as the audit log.
        The declaration (name, flag, parameters) stays as it was."""
        for key, route in self._routes.items():
            self._routes[key] = dataclasses.replace(route, handler=wrapper(route))

    def get(self, name: str) -> Route | None:
        return self._routes.get(name.lower())

    def __iter__(self) -> Iterator[Route]:
        return iter(self._routes.values())

    def __len__(self) -> int:
        return len(self._routes)
