"""The model lists the server offers (ModelsAPI's ``ListModels``), built from the backends' own
lists (``backend.models``): pure functions, no I/O.

A model is *local* when a backend of this server that is not a Swarm-API backend lists it, and
*remote* when only Swarm-API backends (other servers) do, as SwarmUI marks them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from swarmkeeper.backends.record import BackendRecord
from swarmkeeper.backends.status import BackendStatus
from swarmkeeper.types import JSONObject

#: SwarmUI's model sets, in its order; a category a backend reports beyond these is accepted too.
CATEGORIES = ("Stable-Diffusion", "VAE", "LoRA", "Embedding", "ControlNet", "ClipVision")
WILDCARDS = "Wildcards"
#: Performance.ModelListSanityCap: a list is cut off past this many files.
SANITY_CAP = 5000
SORT_MODES = {"name": "Name", "title": "Title", "datecreated": "DateCreated", "datemodified": "DateModified"}
NATIVE_FORMATS = frozenset({"safetensors", "sft", "engine", "gguf"})
REMOTE_TYPE = "swarmswarmbackend"


@dataclass(frozen=True)
class Model:
    name: str
    local: bool
    loaded: bool

    @property
    def title(self) -> str:
        return self.name.rsplit("/", 1)[-1]


def _running(records: Iterable[BackendRecord]) -> list[BackendRecord]:
    return [record for record in records if record.status is BackendStatus.RUNNING]


def categories(records: Iterable[BackendRecord]) -> list[str]:
    """The categories ListModels accepts: SwarmUI's, then any other a backend reports."""
    extra = {category for record in records for category in record.backend.models} - set(CATEGORIES)
    return [*CATEGORIES, *sorted(extra)]


def collect(records: Iterable[BackendRecord], subtype: str, *, allow_remote: bool = True) -> dict[str, Model]:
    """The union of the running backends' lists of one category, by name."""
    running = _running(records)
    loaded = {record.backend.current_model for record in running if record.backend.current_model}
    local: set[str] = set()
    remote: set[str] = set()
    for record in running:
        names = record.backend.models.get(subtype, ())
        (remote if record.type.id == REMOTE_TYPE else local).update(names)
    if not allow_remote:
        remote = set()
    return {name: Model(name, name in local, name in loaded or _stem(name) in loaded)
            for name in sorted(local | remote)}


def _stem(name: str) -> str:
    return name.removesuffix(".safetensors")


def normalize_path(path: str) -> str:
    """SwarmUI's folder prefix: forward slashes, a trailing slash, no leading or doubled ones."""
    path = path.replace("\\", "/")
    if path:
        path += "/"
    while "//" in path:
        path = path.replace("//", "/")
    return path.lstrip("/")


def parse_sort(sort_by: str) -> str | None:
    return SORT_MODES.get(sort_by.strip().lower())


def list_models(models: dict[str, Model], path: str, depth: int, sort_mode: str, reverse: bool) -> JSONObject:
    """``{"folders": [...], "files": [...]}`` under ``path``, down to ``depth`` folders."""
    prefix, depth = normalize_path(path), min(max(depth, 1), 20)
    folders: dict[str, None] = {}
    files: list[Model] = []
    for name, model in models.items():
        if not name.startswith(prefix) or len(name) <= len(prefix):
            continue
        part = name[len(prefix):]
        parts = part.split("/")[:-1]
        for level in range(1, min(depth, len(parts)) + 1):
            folders["/".join(parts[:level])] = None
        if len(parts) < depth and len(files) < SANITY_CAP:
            files.append(model)
    if sort_mode == "Title":
        files.sort(key=lambda model: (model.title, model.name))
    else:  # Name; the date modes fall back to names, as no date is known
        files.sort(key=lambda model: model.name)
    if reverse:
        files.reverse()
    return {"folders": list(folders), "files": [model_json(model) for model in files]}


def model_json(model: Model) -> JSONObject:
    """A model as SwarmUI describes one (T2IModel.ToNetObject); metadata swarmkeeper does not know
    is null, zero or empty, as it is for a model without metadata in SwarmUI."""
    extension = model.name.rsplit(".", 1)[-1] if "." in model.name else ""
    return {
        "name": model.name, "title": None, "author": None, "description": None, "preview_image": None,
        "loaded": model.loaded, "architecture": None, "class": None, "compat_class": None, "resolution": "0x0",
        "standard_width": 0, "standard_height": 0, "license": None, "date": None, "prediction_type": None,
        "usage_hint": None, "trigger_phrase": None, "merged_from": None, "tags": None,
        "is_supported_model_format": extension in NATIVE_FORMATS, "is_negative_embedding": False,
        "local": model.local, "time_created": 0, "time_modified": 0, "hash": "", "hash_sha256": "",
        "special_format": "",
    }


def model_names_by_category(records: Iterable[BackendRecord]) -> JSONObject:
    """ListT2IParams's ``models``: each category's names, as ``[name, architecture]`` pairs."""
    listed = list(records)
    return {category: [[name, None] for name in collect(listed, category)] for category in categories(listed)}
