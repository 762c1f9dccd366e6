"""(swarmkeeper) API keys for scripts and bots: create (shown once), list (by name and prefix),
revoke. Everyone manages their own keys; ``manage_users`` holders see and revoke anyone's.
Creating or revoking a key needs a login, not a key, so a leaked key cannot mint more."""

from __future__ import annotations

from typing import Annotated

from swarmkeeper.accounts.apikeys import APIKey
from swarmkeeper.accounts.callers import KeyUser
from swarmkeeper.accounts.errors import AccountError
from swarmkeeper.accounts.login_routes import NEEDS_LOGIN
from swarmkeeper.api.permissions import MANAGE_API_KEYS, MANAGE_USERS
from swarmkeeper.api.routes import APICall, RouteTable
from swarmkeeper.types import JSONObject

routes = RouteTable()

KEY_EXAMPLE = """
    "id": "0123456789ab", "prefix": "swk_0123456789ab", "name": "nightly-bot", "user": "alice", "role": "user",
    "created": 1767225600.0, "expires": null, "revoked": null, "last_used": null
"""


def by_login(call: APICall) -> None:
    if isinstance(call.user, KeyUser):
        raise AccountError(NEEDS_LOGIN)


async def key_of_caller(call: APICall, key_id: str) -> APIKey:
    """A key the caller may manage: their own, or anyone's with manage_users."""
    key = await call.services.accounts.keys.get(key_id.strip().removeprefix("swk_"))
    if key is None or (key.user != call.user.id and not call.user.may(MANAGE_USERS)):
        raise AccountError("No such API key.")
    return key


@routes.route("CreateAPIKey", flag=MANAGE_API_KEYS, returns='"key": "swk_0123456789ab_<secret>",' + KEY_EXAMPLE)
async def create_api_key(
    call: APICall,
    name: Annotated[str, "What the key is for (e.g. 'nightly-bot'); 1 to 100 characters."],
    role: Annotated[str, "Optionally a narrower role for the key (owner, admin, poweruser, user, guest); empty: "
                         "it acts with its user's own role."] = "",
    expires_days: Annotated[float, "Days until the key expires; 0: never."] = 0,
) -> JSONObject:
    """Create an API key for yourself. The answer's 'key' is the only time the key is shown: store it
    now. Send it as 'Authorization: Bearer <key>'; it can stand in for a session on any route."""
    by_login(call)
    accounts = call.services.accounts
    if await accounts.users.get(call.user.id) is None:
        raise AccountError("API keys belong to user accounts, and the local owner has none; create a user "
                           "(swarmkeeper users add) and log in as it.")
    key, text = await accounts.create_key(call.user, name, role, expires_days)
    return {"key": text, **key.describe()}


@routes.route("ListAPIKeys", flag=MANAGE_API_KEYS, user_update=False, returns='"keys": [{' + KEY_EXAMPLE + "}]")
async def list_api_keys(
    call: APICall,
    user: Annotated[str, "Whose keys: empty for your own; a user name, or '*' for everyone's (needs "
                         "manage_users)."] = "",
) -> JSONObject:
    """List API keys by name and prefix (never the key itself), oldest first, revoked ones included."""
    wanted = user or call.user.id
    if wanted != call.user.id and not call.user.may(MANAGE_USERS):
        raise AccountError("Only user managers (manage_users) can list other users' keys.")
    keys = await call.services.accounts.keys.listing(None if wanted == "*" else wanted)
    return {"keys": [key.describe() for key in keys]}


@routes.route("RevokeAPIKey", flag=MANAGE_API_KEYS, returns='"success": true, "result": "Revoked."')
async def revoke_api_key(call: APICall, id: Annotated[str, "The key's id or prefix (swk_...)."]) -> JSONObject:
    """Revoke an API key at once; the sessions opened with it end too."""
    by_login(call)
    key = await key_of_caller(call, id)
    revoked = await call.services.accounts.revoke_key(key.id)
    return {"success": True, "result": "Revoked." if revoked else "Already revoked."}
