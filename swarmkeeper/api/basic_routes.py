"""Session and status routes every SwarmUI client calls first (``GetNewSession``) and often
(``GetCurrentStatus``)."""

from __future__ import annotations

from typing import Annotated

from swarmkeeper import __version__
from swarmkeeper.api.permissions import FUNDAMENTAL_GENERATE_TAB_ACCESS, PUBLIC
from swarmkeeper.api.routes import APICall, RouteTable
from swarmkeeper.api.views import aggregate_status, supported_features
from swarmkeeper.types import JSONObject

routes = RouteTable()


@routes.route("GetNewSession", flag=PUBLIC, needs_session=False, returns="""
    "session_id": "session_id", "user_id": "local", "output_append_user": true, "version": "0.1.0",
    "server_id": "abc123", "permissions": ["*"]
""")
async def get_new_session(call: APICall) -> JSONObject:
    """Special route to create a new session ID. Must be called before any other API route. Also returns
    other fundamental user and server data."""
    if not call.user.id:
        return {"error": "Invalid or unauthorized."}
    source = call.connection.client.host if call.connection.client else "unknown"
    forwarded = call.connection.headers.get("x-forwarded-for")
    if forwarded:
        source += f" (forwarded-for: {''.join(c for c in forwarded if c.isprintable())})"
    session = await call.services.sessions.create(call.user.id, source)
    return {
        "session_id": session.token,
        "user_id": call.user.id,
        "output_append_user": True,
        "version": __version__,
        "server_id": call.services.server_id,
        "permissions": call.user.permission_list(),
    }


@routes.route("GetCurrentStatus", flag=FUNDAMENTAL_GENERATE_TAB_ACCESS, user_update=False, returns="""
    "status": {"waiting_gens": 0, "loading_models": 0, "waiting_backends": 0, "live_gens": 0},
    "backend_status": {"status": "running", "class": "", "message": "", "any_loading": false},
    "supported_features": ["feature_id1", "feature_id2"]
""")
async def get_current_status(
    call: APICall,
    do_debug: Annotated[bool, "If true, verbose log data about the status report gathering (internal "
                              "usage)."] = False,
) -> JSONObject:
    """Get current waiting generation count, model loading count, etc."""
    records = call.services.registry.all()
    return {"status": call.services.status_counts(call.session), "backend_status": aggregate_status(records),
            "supported_features": supported_features(records)}
