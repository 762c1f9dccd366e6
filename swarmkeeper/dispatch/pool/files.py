"""Which backend holds which output file, so ``/view`` reaches the right one.

Every backend numbers its files from 1 (``ComfyUI_00001_.png``), so two backends soon make files
of the same name. The first name the pool shows is kept as it is; a second backend's file of the
same name is shown under an alias with the backend's id added (``ComfyUI_00001_-b1.png``), in the
events and the history alike, and ``/view`` of the alias fetches the real file from that backend.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from swarmkeeper.types import BackendId

FileKey = tuple[str, str, str]
#: Files remembered (the oldest are forgotten first; their /view then asks every backend).
MAX_FILES = 200_000


@dataclass(frozen=True)
class Located:
    backend_id: BackendId
    real_name: str


def alias_name(name: str, backend_id: BackendId) -> str:
    stem, dot, extension = name.rpartition(".")
    tag = f"-b{backend_id}"
    return f"{stem}{tag}.{extension}" if dot and stem else f"{name}{tag}"


def safe_filename(name: str) -> bool:
    """ComfyUI's /view check on ``filename``: no parent step, not absolute."""
    return bool(name) and ".." not in name and not name.startswith("/")


def safe_subfolder(subfolder: str) -> bool:
    """The subfolder stays inside its folder."""
    parts = subfolder.replace("\\", "/").split("/")
    return not subfolder.startswith(("/", "\\")) and ".." not in parts and ":" not in subfolder


class FileMap:
    def __init__(self, limit: int = MAX_FILES) -> None:
        self.limit = limit
        self._files: OrderedDict[FileKey, Located] = OrderedDict()

    def register(self, kind: str, subfolder: str, name: str, backend_id: BackendId) -> str:
        """Note a file a backend made; the name to show for it."""
        key = (kind, subfolder, name)
        known = self._files.get(key)
        if known is not None and known.backend_id != backend_id:
            shown = alias_name(name, backend_id)
            key = (kind, subfolder, shown)
        else:
            shown = name
        self._files[key] = Located(backend_id, name)
        self._files.move_to_end(key)
        while len(self._files) > self.limit:
            self._files.popitem(last=False)
        return shown

    def locate(self, kind: str, subfolder: str, shown: str) -> Located | None:
        return self._files.get((kind, subfolder, shown))

    def rewrite(self, output: Mapping[str, Any], backend_id: BackendId) -> dict[str, Any]:
        """An ``executed`` output (or a history node output) with every file registered and shown
        under its pool name."""
        rewritten: dict[str, Any] = {}
        for key, value in output.items():
            if isinstance(value, list) and all(isinstance(item, dict) and "filename" in item for item in value):
                rewritten[key] = [self._rewrite_file(item, backend_id) for item in value]
            else:
                rewritten[key] = value
        return rewritten

    def _rewrite_file(self, item: dict[str, Any], backend_id: BackendId) -> dict[str, Any]:
        name = item.get("filename")
        if not isinstance(name, str):
            return item
        kind = str(item.get("type") or "output")
        subfolder = str(item.get("subfolder") or "")
        shown = self.register(kind, subfolder, name, backend_id)
        return item if shown == name else {**item, "filename": shown}
