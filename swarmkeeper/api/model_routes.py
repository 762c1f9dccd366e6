"""Model routes: what a SwarmUI server calls on swarmkeeper when it uses it as a Swarm-API backend
(`ListModels`, `TriggerRefresh`, `SelectModel`), with SwarmUI's parameters, permission flags and
answer shapes. The model lists are the union of the running backends' own lists.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Protocol, runtime_checkable

from swarmkeeper.api.model_listing import (
    WILDCARDS,
    categories,
    collect,
    list_models,
    model_names_by_category,
    parse_sort,
)
from swarmkeeper.api.permissions import (
    CONTROL_MODEL_REFRESH,
    FUNDAMENTAL_GENERATE_TAB_ACCESS,
    FUNDAMENTAL_MODEL_ACCESS,
    LOAD_MODELS_NOW,
)
from swarmkeeper.api.routes import APICall, RouteTable
from swarmkeeper.backends.manager import selects
from swarmkeeper.backends.record import BackendRecord
from swarmkeeper.backends.status import BackendStatus
from swarmkeeper.exceptions import APIError
from swarmkeeper.features import Feature
from swarmkeeper.types import JSONObject

if TYPE_CHECKING:
    from swarmkeeper.services import Services

log = logging.getLogger("swarmkeeper.models")
routes = RouteTable()
#: Longest one backend may take to re-read its model lists.
REFRESH_TIMEOUT = 120.0


@runtime_checkable
class LoadsModels(Protocol):
    """A backend that can load a model on demand (SelectModel)."""

    async def load_model(self, model: str) -> bool: ...


class ModelRefresher:
    """TriggerRefresh's work: every running backend re-reads its lists, one refresh at a time. A
    call arriving during a refresh does not start another, nor wait for it: servers that use each
    other pass a refresh on to each other, and waiting there would hold both until a timeout."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    async def refresh(self, records: list[BackendRecord]) -> None:
        if self._lock.locked():
            return
        async with self._lock:
            running = [record for record in records if record.status is BackendStatus.RUNNING]
            await asyncio.gather(*(self._refresh_one(record) for record in running))

    @staticmethod
    async def _refresh_one(record: BackendRecord) -> None:
        try:
            async with asyncio.timeout(REFRESH_TIMEOUT):
                await record.backend.refresh_models()
        except Exception as error:  # one backend's trouble never fails the refresh of the others
            log.warning("Backend #%s failed to refresh its model lists: %s", record.id, error)


def refresher(services: Services) -> ModelRefresher:
    found = services.extra.get("model_refresher")
    if not isinstance(found, ModelRefresher):
        found = services.extra["model_refresher"] = ModelRefresher()
    return found


@routes.route("ListModels", flag=FUNDAMENTAL_MODEL_ACCESS, user_update=False, returns="""
    "folders": ["folder1", "folder2"],
    "files": [{"name": "folder1/model.safetensors", "title": null, "loaded": false, "local": true, "...": "..."}]
""")
async def list_models_route(
    call: APICall,
    path: Annotated[str, "What folder path to search within. Use empty string for root."],
    depth: Annotated[int, "Maximum depth (number of recursive folders) to search."],
    subtype: Annotated[str, "Model sub-type - `LoRA`, `Wildcards`, etc."] = "Stable-Diffusion",
    sortBy: Annotated[str, "What to sort the list by - `Name`, `DateCreated`, or `DateModified."] = "Name",
    allowRemote: Annotated[bool, "If true, allow remote models. If false, only local models."] = True,
    sortReverse: Annotated[bool, "If true, the sorting should be done in reverse."] = False,
    dataImages: Annotated[bool, "If true, provide model images in raw data format. If false, use URLs "
                                "(swarmkeeper has no model images: always null)."] = False,
) -> JSONObject:
    """Returns a list of models available on the server within a given folder: the union of the
    running backends' lists."""
    sort_mode = parse_sort(sortBy)
    if sort_mode is None:
        raise APIError(f"Invalid sort mode '{sortBy}'.")
    records = call.services.registry.all()
    if subtype == WILDCARDS:
        return {"folders": [], "files": []}
    if subtype not in categories(records):
        raise APIError("Invalid sub-type.")
    models = collect(records, subtype, allow_remote=allowRemote)
    return list_models(models, path, depth, sort_mode, sortReverse)


@routes.route("TriggerRefresh", flag=FUNDAMENTAL_GENERATE_TAB_ACCESS, returns="""
    "list": [], "groups": [], "models": {"Stable-Diffusion": [["model.safetensors", null]]},
    "model_compat_classes": {}, "model_classes": {}, "wildcards": [], "param_edits": null
""")
async def trigger_refresh(
    call: APICall,
    strong: Annotated[bool, "If true, fully refresh everything. If false, just grabs the list of current available "
                            "parameters (waiting for any pending refreshes first)."] = True,
    refreshType: Annotated[str, "Optional type of data to refresh. If unspecified, runs a general refresh."] = "",
) -> JSONObject:
    """Trigger a refresh of the server's data (every running backend re-reads its model lists; needs
    'control_model_refresh' to take effect), returning parameter data."""
    if strong and call.user.may(CONTROL_MODEL_REFRESH) and refreshType in ("", "models"):
        log.info("User %s triggered a model refresh", call.user.id)
        await refresher(call.services).refresh(call.services.registry.all())
    return {"list": [], "groups": [], "models": model_names_by_category(call.services.registry.all()),
            "model_compat_classes": {}, "model_classes": {}, "wildcards": [], "param_edits": None}


@routes.route("SelectModel", flag=LOAD_MODELS_NOW, returns='"success": true')
async def select_model(
    call: APICall,
    model: Annotated[str, "The full filepath of the model to load."],
    backendId: Annotated[str, "The ID of a backend to load the model on, or null to load on all."] = "",
) -> JSONObject:
    """Forcibly loads a model immediately on some or all backends (those that can load on demand)."""
    if not model.strip():
        raise APIError("Invalid empty name.")
    records = call.services.registry.all()
    known = collect(records, "Stable-Diffusion")
    name = model if model in known else f"{model}.safetensors"
    if name not in known:
        raise APIError("Model not found.")
    if not await _load_everywhere(call, records, name, backendId or "all"):
        raise APIError("Model failed to load.")
    return {"success": True}


async def _load_everywhere(call: APICall, records: list[BackendRecord], model: str, selector: str) -> bool:
    targets = [record for record in records if record.status is BackendStatus.RUNNING and record.max_usages > 0
               and record.backend.can_load_models and not record.shutdown_reserved and selects(selector, record)]
    loader = call.services.model_loader
    loaded = False
    for record in targets:
        backend = record.backend
        if isinstance(backend, LoadsModels):
            loaded = await _load_on(record, backend, model) or loaded
        elif loader is not None and model in backend.models.get("Stable-Diffusion", ()):  # a ComfyUI
            loaded = await _load_with(loader, record, model) or loaded
    return loaded


async def _load_with(loader: Callable[[BackendRecord, str], Awaitable[bool]], record: BackendRecord,
                     model: str) -> bool:
    try:
        return await loader(record, model)
    except Exception as error:  # a backend that fails to load is reported, the others still try
        log.warning("Backend #%s failed to load model '%s': %s", record.id, model, error)
        return False


async def _load_on(record: BackendRecord, backend: LoadsModels, model: str) -> bool:
    record.reserve_model_load = True
    try:
        return await backend.load_model(model)
    except Exception as error:  # a backend that fails to load is reported, the others still try
        log.warning("Backend #%s failed to load model '%s': %s", record.id, model, error)
        return False
    finally:
        record.reserve_model_load = False


MODELS = Feature(name="models", routes=routes)
