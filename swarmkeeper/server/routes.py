"""The routes of SwarmUI's Server tab (its AdminAPI, src/WebAPI/AdminAPI.cs): the Server Info panels
(resources and connected users, polled every second by SwarmUI's page), interrupting a user,
shutting the server down, and the update routes, which answer that swarmkeeper is updated by its
package manager."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from swarmkeeper.accounts.service import accounts_of
from swarmkeeper.api.connected import SessionCounts, connected_users, no_counts
from swarmkeeper.api.permissions import AUTOMATED_CONTROL, INTERRUPT_OTHERS, READ_SERVER_INFO_PANELS, RESTART, SHUTDOWN
from swarmkeeper.api.routes import APICall, RawInput, RouteTable
from swarmkeeper.dispatch.generate import pool_of
from swarmkeeper.dispatch.pool.core import Pool
from swarmkeeper.dispatch.pool.jobs import JobState
from swarmkeeper.dispatch.stats import session_stats
from swarmkeeper.exceptions import APIError
from swarmkeeper.types import JSONObject

routes = RouteTable()
log = logging.getLogger("swarmkeeper")

UPDATES_REFUSAL = ("swarmkeeper is updated by the package manager it was installed with (for example "
                   "'pip install --upgrade swarmkeeper', then restart the server), not from the web page; "
                   "backends update themselves as their own settings say (ComfyUI Self-Starting: AutoUpdate).")
#: Seconds between the ShutdownServer answer and the stop, so the answer reaches the caller.
SHUTDOWN_DELAY = 0.5


def running_pool(call: APICall) -> Pool | None:
    try:
        return pool_of(call)
    except APIError:  # the dispatch feature is not running: no generations to count or stop
        return None


@routes.route("GetServerResourceInfo", flag=READ_SERVER_INFO_PANELS, user_update=False, returns="""
    "cpu": {"usage": 0.0, "cores": 0},
    "system_ram": {"total": 0, "used": 0, "free": 0},
    "gpus": {"0": {"id": 0, "name": "namehere", "temperature": 0, "utilization_gpu": 0, "utilization_memory": 0,
                   "total_memory": 0, "free_memory": 0, "used_memory": 0}}
""")
async def get_server_resource_info(call: APICall) -> JSONObject:
    """Returns information about the server's resource usage: CPU (usage as a fraction), system RAM in bytes, and
    each NVIDIA GPU (through nvidia-ml-py when installed; `gpus` is empty without it)."""
    return await call.services.resources.read()


@routes.route("ListConnectedUsers", flag=READ_SERVER_INFO_PANELS, user_update=False, returns="""
    "users": [{"id": "useridhere", "last_active_seconds": 0, "active_sessions": [{"address": "addresshere",
               "count": 1}], "last_active": "10 seconds ago", "waiting_gens": 0, "loading_models": 0,
               "waiting_backends": 0, "live_gens": 0}]
""")
async def list_connected_users(call: APICall) -> JSONObject:
    """Returns a list of currently connected users (a session used in the last 3 minutes, or generations under
    way), with their sessions' addresses and generation counts."""
    pool = running_pool(call)
    counts: SessionCounts = session_stats(pool) if pool is not None else no_counts
    return {"users": connected_users(call.services.sessions.all(), counts)}


async def known_user(call: APICall, name: str) -> bool:
    """An account, the local owner, or (accounts off) anyone holding a session."""
    if name == call.services.config.user_id or call.services.sessions.of_user(name):
        return True
    return await accounts_of(call.services).users.get(name) is not None


async def interrupt_sessions(pool: Pool, session_ids: set[str]) -> int:
    """Stop the generations of these sessions: queued ones dropped, running ones interrupted."""
    stopped = 0
    for job in list(pool.jobs.values()):
        if not job.live or job.session not in session_ids:
            continue
        if job.state is JobState.RUNNING:
            await pool.runner.interrupt(job)
        else:
            await pool.delete_queued([job.prompt_id])
        stopped += 1
    return stopped


@routes.route("AdminInterruptUser", flag=INTERRUPT_OTHERS, returns='"success": true')
async def admin_interrupt_user(call: APICall, name: Annotated[str, "The name of the user to interrupt."]) -> JSONObject:
    """Admin route to interrupt another user's queue (every generation of every session of theirs)."""
    if not await known_user(call, name):
        raise APIError("No user by that name exists.")
    pool = running_pool(call)
    sessions = {session.id for session in call.services.sessions.of_user(name)}
    stopped = await interrupt_sessions(pool, sessions) if pool is not None else 0
    log.debug("Admin '%s' interrupted all sessions for user '%s' (%s generations).", call.user.id, name, stopped)
    return {"success": True}


@routes.route("ShutdownServer", flag=SHUTDOWN, returns='"success": true')
async def shutdown_server(call: APICall) -> JSONObject:
    """Shuts the server down (every backend stopped cleanly, as Ctrl-C does). Returns success before the server is
    gone."""
    request_shutdown = getattr(call.connection.app.state, "request_shutdown", None)
    if request_shutdown is None:
        raise APIError("This server was not started by 'swarmkeeper serve'; stop it the way it was started.")
    log.warning("User %s requested server shutdown.", call.user.id)
    loop = asyncio.get_running_loop()
    loop.call_later(SHUTDOWN_DELAY, request_shutdown)
    return {"success": True}


@routes.route("AdminTakeControl", flag=AUTOMATED_CONTROL, returns='"success": true')
async def admin_take_control(call: APICall) -> JSONObject:
    """Tells this server that another one (an autoscaling master) controls it; with --require_control_within, a server
    that gets no such call within that time shuts itself down."""
    call.services.control.ping()
    return {"success": True}


@routes.route("CheckForUpdates", flag=RESTART, user_update=False, returns='"error": "swarmkeeper is updated by ..."')
async def check_for_updates(call: APICall) -> JSONObject:
    """(swarmkeeper) Always answers an error saying how swarmkeeper is updated: by its package manager."""
    raise APIError(UPDATES_REFUSAL)


@routes.route("UpdateAndRestart", flag=RESTART, returns='"error": "swarmkeeper is updated by ..."')
async def update_and_restart(
    call: APICall,
    raw: Annotated[RawInput, "SwarmUI's extensionsToUpdate and backendsToUpdate (ignored)."],
    doUpdateServer: Annotated[bool, "True to include the SwarmUI core in the updates (ignored)."] = False,
    aggressive: Annotated[bool, "(ignored)"] = False,
    force: Annotated[bool, "(ignored)"] = False,
) -> JSONObject:
    """(swarmkeeper) Refuses, saying how swarmkeeper is updated: by its package manager; nothing restarts."""
    log.info("User %s asked to update and restart; refused (updates come from the package manager).", call.user.id)
    raise APIError(UPDATES_REFUSAL)
