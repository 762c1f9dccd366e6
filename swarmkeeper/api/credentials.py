"""Who calls a plain HTTP endpoint (``/metrics``, ``/openapi.json``, ``/health/ready``'s detail),
and whether they may: the credentials a request itself carries, as GetNewSession reads them.

With accounts on: an API key (``Authorization: Bearer swk_...``), the login cookie
(``swarm_token``), or the localhost bypass. With accounts off, every caller is the local owner,
so every endpoint stays open as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection
from starlette.responses import Response

from swarmkeeper.api.permissions import PermissionFlag
from swarmkeeper.api.transport import SwarmJSONResponse, error_body
from swarmkeeper.api.users import User
from swarmkeeper.exceptions import TransportError

if TYPE_CHECKING:
    from swarmkeeper.services import Services

class LoginRequired(TransportError):
    """No credential at all: HTTP 401."""

    status_code = 401

    def __init__(self) -> None:
        super().__init__("login_required", "This needs a credential: log in (the swarm_token cookie) or send an "
                                           "API key ('Authorization: Bearer swk_...').")


class Forbidden(TransportError):
    """A known caller whose role lacks the endpoint's permission: HTTP 403."""

    status_code = 403

    def __init__(self, flag: PermissionFlag) -> None:
        super().__init__("bad_permissions", f"You lack the permission this needs ({flag.id}).")


async def caller(services: Services, connection: HTTPConnection) -> User | None:
    """The request's user, or None if it carries no credential; TransportError for a bad API key."""
    return await services.users.user_for_request(connection)


async def permitted(services: Services, connection: HTTPConnection, flag: PermissionFlag) -> bool:
    """Whether the request's credentials hold ``flag`` (a bad or missing credential does not)."""
    try:
        user = await caller(services, connection)
    except TransportError:
        return False
    return user is not None and user.may(flag)


async def refusal(services: Services, connection: HTTPConnection, flag: PermissionFlag) -> Response | None:
    """None if the request may go on; else the answer: HTTP 401 without a (valid) credential,
    403 for a caller without ``flag``, in SwarmUI's ``{"error_id", "error"}`` shape."""
    try:
        user = await caller(services, connection)
        if user is None:
            raise LoginRequired()
        if not user.may(flag):
            raise Forbidden(flag)
    except TransportError as error:
        return SwarmJSONResponse(error_body(error), status_code=error.status_code)
    return None
