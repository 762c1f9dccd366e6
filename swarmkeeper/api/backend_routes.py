"""SwarmUI's BackendAPI: the eight routes (reference §3), each a thin call into the manager."""

from __future__ import annotations

import logging
from typing import Annotated

from swarmkeeper.api.gzipped import accepts_gzip
from swarmkeeper.api.permissions import (
    ADD_REMOVE_BACKENDS,
    CONTROL_MEM_CLEAN,
    EDIT_BACKENDS,
    RESTART_BACKENDS,
    TOGGLE_BACKENDS,
    VIEW_BACKENDS_LIST,
)
from swarmkeeper.api.routes import APICall, RawInput, RouteTable
from swarmkeeper.api.views import backend_json
from swarmkeeper.exceptions import APIError
from swarmkeeper.types import GzipJSON, JSONObject

log = logging.getLogger("swarmkeeper.api")
routes = RouteTable()

BACKEND_EXAMPLE = """
    "type": "comfyui_selfstart", "status": "running", "id": 0, "settings": {"StartScript": "..."},
    "modcount": 0, "features": ["comfyui"], "enabled": true, "title": "", "max_usages": 2,
    "seconds_since_used": 0, "time_since_used": "Never", "can_load_models": true,
    "status_reason": "", "init_attempts": 1, "usages": 0
"""


def may_edit(call: APICall) -> bool:
    """Whether the caller sees private settings (header lines that may hold tokens) as they are."""
    return call.user.may(EDIT_BACKENDS)


def wants_gzip(call: APICall) -> bool:
    """An HTTP caller whose Accept-Encoding allows gzip (a websocket caller gets text)."""
    return call.send is None and accepts_gzip(call.connection.headers.get("accept-encoding", ""))


def refuse_if_locked(call: APICall) -> None:
    if call.services.config.lock_settings:
        raise APIError("Settings are locked.")


@routes.route("ListBackendTypes", flag=VIEW_BACKENDS_LIST, user_update=False, returns="""
    "list": [{"id": "comfyui_selfstart", "name": "ComfyUI Self-Starting", "description": "...",
              "settings": [{"name": "StartScript", "type": "text", "description": "...", "placeholder": "",
                            "is_secret": false, "values": null, "value_names": null}],
              "is_standard": true}]
""")
async def list_backend_types(call: APICall) -> JSONObject:
    """Returns a list of all available backend types, with their settings."""
    return {"list": [backend_type.describe() for backend_type in call.services.types]}


@routes.route("ListBackends", flag=VIEW_BACKENDS_LIST, user_update=False,
              returns='"0": {' + BACKEND_EXAMPLE + "}")
async def list_backends(
    call: APICall,
    nonreal: Annotated[bool, "If true, include 'non-real' backends (ones that were spawned temporarily or "
                             "internally)."] = False,
    full_data: Annotated[bool, "If true, include 'full data' (current_model) for each backend."] = False,
) -> GzipJSON:
    """Returns a list of currently registered backends, keyed by id, in ascending id order."""
    return call.services.listing.answer(call.services.registry.all(), nonreal=nonreal, full_data=full_data,
                                        editor=may_edit(call), gzip=wants_gzip(call))


@routes.route("AddNewBackend", flag=ADD_REMOVE_BACKENDS, returns="{" + BACKEND_EXAMPLE + "}")
async def add_new_backend(call: APICall, type_id: Annotated[str, "ID of what type of backend to add "
                                                                 "(see ListBackendTypes)."]) -> JSONObject:
    """Add a new backend of the specified type, with default settings. Returns it (usually 'waiting')."""
    refuse_if_locked(call)
    log.warning("User %s requested add of new backend of type %s", call.user.id, type_id)
    return backend_json(await call.services.manager.add(type_id), editor=may_edit(call))


@routes.route("DeleteBackend", flag=ADD_REMOVE_BACKENDS, returns='"result": "Deleted."')
async def delete_backend(call: APICall, backend_id: Annotated[int, "ID of the backend to delete."]) -> JSONObject:
    """Shuts down and deletes a registered backend by ID."""
    refuse_if_locked(call)
    log.warning("User %s requested delete of backend %s", call.user.id, backend_id)
    deleted = await call.services.manager.delete(backend_id)
    return {"result": "Deleted." if deleted else "Already didn't exist."}


@routes.route("ToggleBackend", flag=TOGGLE_BACKENDS, returns='"result": "Success."')
async def toggle_backend(call: APICall, backend_id: Annotated[int, "ID of the backend to toggle."],
                         enabled: Annotated[bool, "If true, backend should be enabled. If false, backend should "
                                                  "be disabled."]) -> JSONObject | None:
    """Disables or re-enables a backend by ID."""
    refuse_if_locked(call)
    log.warning("User %s requested toggle of backend %s to enabled=%s", call.user.id, backend_id, enabled)
    changed = await call.services.manager.toggle(backend_id, enabled)
    if changed and call.services.manager.lifecycle.stopping.is_set():
        return None  # SwarmUI answers no_result while the server stops
    return {"result": "Success." if changed else "No change."}


@routes.route("EditBackend", flag=EDIT_BACKENDS, returns="{" + BACKEND_EXAMPLE + "}")
async def edit_backend(
    call: APICall,
    backend_id: Annotated[int, "ID of the backend to edit."],
    title: Annotated[str, "New title of the backend."],
    raw_inp: Annotated[RawInput, "Send a key 'settings' with the settings to change (a partial overlay: only "
                                 "the fields given change)."],
    new_id: Annotated[int, "Optional new ID to change the backend to."] = -1,
) -> JSONObject:
    """Modify and re-init an already registered backend."""
    refuse_if_locked(call)
    settings = raw_inp.get("settings")
    if not isinstance(settings, dict):
        raise APIError("Missing settings.")
    log.warning("User %s requested edit of backend %s", call.user.id, backend_id)
    return backend_json(await call.services.manager.edit(backend_id, title, settings, new_id), editor=may_edit(call))


@routes.route("RestartBackends", flag=RESTART_BACKENDS, returns='"result": "Success.", "count": 1')
async def restart_backends(
    call: APICall,
    backend: Annotated[str, "What backend ID to restart, or 'all' for all."] = "all",
    force: Annotated[bool, "(swarmkeeper) If true, restart in any status (a backend stuck 'loading' too), "
                           "killing its process tree at once instead of waiting for running work."] = False,
) -> JSONObject:
    """Restart backends that are running or errored (any status with force)."""
    refuse_if_locked(call)
    log.warning("User %s requested restart of backend %s (force=%s)", call.user.id, backend, force)
    count = await call.services.manager.restart(backend, force=force)
    return {"result": "Success.", "count": count}


@routes.route("FreeBackendMemory", flag=CONTROL_MEM_CLEAN, returns='"result": true, "count": 1')
async def free_backend_memory(
    call: APICall,
    system_ram: Annotated[bool, "If true, system RAM should be cleared too. If false, only VRAM should be "
                                "cleared."] = False,
    backend: Annotated[str, "What backend ID to free the memory of, or 'all' for all."] = "all",
) -> JSONObject:
    """Free memory from all running backends (or one). 'count' is how many reported success."""
    result, count = await call.services.manager.free_memory(backend, system_ram)
    return {"result": result, "count": count}
