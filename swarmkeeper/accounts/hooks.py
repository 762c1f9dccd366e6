"""Behaviour the accounts feature puts around routes (with ``RouteTable.wrap``), so no handler has
to remember it:

- :func:`audited`: every changing route (a SwarmUI "user update" route that needs a session) is
  written to the audit log with its outcome: who, when, from where, which backend, what was asked
  (secrets redacted, see redact.py).
- :func:`binding_key_sessions`: a session GetNewSession opens for an API-key caller is bound to the
  key, so it keeps the key's narrower role and ends with it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from swarmkeeper.accounts.audit import OK
from swarmkeeper.accounts.callers import KeyUser
from swarmkeeper.accounts.redact import redact
from swarmkeeper.api.permissions import PUBLIC
from swarmkeeper.api.routes import APICall, Handler, Route
from swarmkeeper.api.sessions import session_key
from swarmkeeper.backends.settings import Private
from swarmkeeper.exceptions import APIError, TransportError
from swarmkeeper.types import JSONObject, RawJSON

if TYPE_CHECKING:
    from swarmkeeper.accounts.service import Accounts
    from swarmkeeper.services import Services

log = logging.getLogger("swarmkeeper.accounts")

RouteWrapper = Callable[[Route], Handler]
#: Added to an entry's ``changes`` when the call came through an API key (its public prefix).
VIA_KEY = "_via_key"


def caller_address(call: APICall) -> str:
    address = call.connection.client.host if call.connection.client else "unknown"
    forwarded = call.connection.headers.get("x-forwarded-for")
    if forwarded:
        address += f" (forwarded-for: {''.join(c for c in forwarded if c.isprintable())[:100]})"
    return address


def is_changing(route: Route) -> bool:
    return route.user_update and route.flag is not PUBLIC


def secret_settings(services: Services, arguments: dict[str, Any]) -> frozenset[str]:
    """Names of the settings of the backend (or type) a call is about that are secret or may hold
    one (private: header lines); of every type when the call names neither, so nothing slips
    through."""
    backend_type = None
    if isinstance(arguments.get("backend_id"), int):
        record = services.registry.get(arguments["backend_id"])
        backend_type = record.type if record is not None else None
    elif isinstance(arguments.get("type_id"), str):
        backend_type = services.types.get(arguments["type_id"])
    types = [backend_type] if backend_type is not None else list(services.types)
    return frozenset(s.name for t in types for s in t.schema.settings if s.secret or s.private is not Private.NO)


def backend_ids(arguments: dict[str, Any], result: Any) -> tuple[str | None, str | None]:
    """The backend a call named (``backend_id``, ``backend``, or the new backend's ``id``), and
    the id it moved it to (``new_id``)."""
    named = arguments.get("backend_id", arguments.get("backend"))
    if named is None and isinstance(result, dict) and isinstance(result.get("id"), int):
        named = result["id"]
    new_id = arguments.get("new_id")
    moved = str(new_id) if isinstance(new_id, int) and new_id >= 0 else None
    return (str(named)[:100] if named is not None else None), moved


async def _record(accounts: Accounts, route: Route, call: APICall, arguments: dict[str, Any], result: Any,
                  outcome: str, secrets: frozenset[str]) -> None:
    backend, moved = backend_ids(arguments, result)
    changes = redact(call.raw, secrets)
    if isinstance(call.user, KeyUser):
        changes[VIA_KEY] = f"swk_{call.user.key_id}"  # which key, should one leak
    try:
        await accounts.audit.record(user=call.user.id, route=route.name, address=caller_address(call),
                                    changes=changes, outcome=outcome, backend_id=backend, new_backend_id=moved)
    except Exception:  # the call itself is done; a lost audit line must not turn it into an error
        log.exception("Could not write the audit log entry for %s by %s", route.name, call.user.id)


def audited(accounts: Accounts) -> RouteWrapper:
    def wrap(route: Route) -> Handler:
        if not is_changing(route):
            return route.handler

        async def handler(call: APICall, **arguments: Any) -> JSONObject | RawJSON | None:
            secrets = secret_settings(call.services, arguments)
            try:
                result = await route.handler(call, **arguments)
            except (APIError, TransportError) as error:
                await _record(accounts, route, call, arguments, None, f"error: {error.message}", secrets)
                raise
            except Exception:
                await _record(accounts, route, call, arguments, None, "internal error", secrets)
                raise
            await _record(accounts, route, call, arguments, result, OK if result is not None else "no result",
                          secrets)
            return result

        return handler

    return wrap


def binding_key_sessions(accounts: Accounts) -> RouteWrapper:
    def wrap(route: Route) -> Handler:
        if route.name != "GetNewSession":
            return route.handler

        async def handler(call: APICall, **arguments: Any) -> JSONObject | RawJSON | None:
            result = await route.handler(call, **arguments)
            if isinstance(call.user, KeyUser) and isinstance(result, dict) and "session_id" in result:
                await accounts.keys.bind_session(session_key(result["session_id"]), call.user.key_id)
            return result

        return handler

    return wrap
