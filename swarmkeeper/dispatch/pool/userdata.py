"""The ComfyUI frontend's files of one user (its settings, saved workflows, subgraphs, user.css),
kept by swarmkeeper in its data dir as ComfyUI keeps them in its ``user/<name>/`` folder, never
on a backend: ``<data_dir>/comfyui-users/<user>/``.

Names come from the caller: a name is a relative path of plain parts (no ``..``, no absolute
path, no backslash or control character), the file stays inside the user's folder even through
links, and a user's files are capped in size and number. Every write is atomic: a file is either
its old or its new content. Calls do their disk work without awaiting, so a read-modify-write
(the settings) cannot interleave with another.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FOLDER = "comfyui-users"
SETTINGS_FILE = "comfy.settings.json"
_PLAIN_USER = re.compile(r"[A-Za-z0-9_-]{1,64}")
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")
JSONObject = dict[str, Any]


@dataclass(frozen=True)
class Limits:
    file_bytes: int = 16 * 1024 * 1024
    user_bytes: int = 256 * 1024 * 1024
    user_files: int = 5000
    depth: int = 8
    name_chars: int = 255
    path_chars: int = 1024


class UserDataError(Exception):
    """A refused call: the HTTP status ComfyUI answers with, and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def user_folder(data_dir: Path, user_id: str) -> Path:
    """A user's folder: the id itself when it is plain, else a digest of it (never both alike)."""
    name = user_id if _PLAIN_USER.fullmatch(user_id) else "~" + hashlib.sha256(user_id.encode()).hexdigest()[:40]
    return data_dir / FOLDER / name


def file_info(path: Path, root: Path) -> JSONObject:
    stat = path.stat()
    return {"path": path.relative_to(root).as_posix(), "size": stat.st_size,
            "modified": stat.st_mtime, "created": stat.st_ctime}


class UserFiles:
    def __init__(self, root: Path, limits: Limits | None = None) -> None:
        self.root = root
        self.limits = limits or Limits()

    # --- names ---

    def parts_of(self, name: str, *, folder: bool = False) -> list[str]:
        """The parts of a name, or UserDataError(403) when it may not name a file of this user."""
        text = name.strip("/") if folder else name
        if not text:
            return []
        parts = text.split("/")
        limits = self.limits
        if (len(text) > limits.path_chars or len(parts) > limits.depth or _BAD_CHARS.search(text)
                or any(part in ("", ".", "..") or len(part.encode()) > limits.name_chars for part in parts)):
            raise UserDataError(403, "Invalid file name.")
        return parts

    def path_of(self, name: str, *, folder: bool = False) -> Path:
        path = self.root.joinpath(*self.parts_of(name, folder=folder))
        real_root = self.root.resolve()
        if not path.resolve().is_relative_to(real_root):
            raise UserDataError(403, "Invalid file name.")
        return path

    # --- listing ---

    def listing(self, folder: str, *, recurse: bool, full_info: bool, split: bool) -> list[Any]:
        """``GET /userdata?dir=``: the files in ``folder`` (ComfyUI's three shapes)."""
        base = self.path_of(folder, folder=True)
        if not base.is_dir():
            raise UserDataError(404, "Directory not found")
        found = sorted(p for p in (base.rglob("*") if recurse else base.glob("*")) if p.is_file())
        if full_info:
            return [file_info(p, base) for p in found]
        relative = [p.relative_to(base).as_posix() for p in found]
        return [[r, *r.split("/")] for r in relative] if split else relative

    def listing_v2(self, folder: str) -> list[JSONObject]:
        """``GET /v2/userdata?path=``: folders first, then files, each with its path from the root."""
        base = self.path_of(folder, folder=True)
        if not base.exists():
            if base == self.root:
                return []
            raise UserDataError(404, "Requested path not found")
        if not base.is_dir():
            raise UserDataError(400, "Requested path is not a directory")
        entries: list[JSONObject] = []
        for path in base.rglob("*"):
            entry: JSONObject = {"name": path.name, "path": path.relative_to(self.root).as_posix(),
                                 "type": "directory" if path.is_dir() else "file"}
            if entry["type"] == "file":
                stat = path.stat()
                entry |= {"size": stat.st_size, "modified": stat.st_mtime}
            entries.append(entry)
        entries.sort(key=lambda e: (e["type"] != "directory", e["name"].lower()))
        return entries

    # --- one file ---

    def read(self, name: str) -> bytes:
        path = self.path_of(name)
        if not path.is_file():
            raise UserDataError(404, "File not found")
        return path.read_bytes()

    def write(self, name: str, data: bytes, *, overwrite: bool) -> Path:
        path = self.path_of(name)
        if path.is_dir():
            raise UserDataError(400, "A folder has that name.")
        if path.exists() and not overwrite:
            raise UserDataError(409, "File already exists")
        self._check_room(path, len(data))
        write_bytes_atomic(path, data, self.root.parent / ".partial")
        return path

    def delete(self, name: str) -> None:
        path = self.path_of(name)
        if not path.is_file():
            raise UserDataError(404, "File not found")
        path.unlink()

    def move(self, source: str, dest: str, *, overwrite: bool) -> Path:
        old, new = self.path_of(source), self.path_of(dest)
        if not old.is_file():
            raise UserDataError(404, "File not found")
        if new.is_dir():
            raise UserDataError(400, "A folder has that name.")
        if new.exists() and not overwrite:
            raise UserDataError(409, "File already exists")
        new.parent.mkdir(parents=True, exist_ok=True)
        os.replace(old, new)
        return new

    def _check_room(self, path: Path, size: int) -> None:
        limits = self.limits
        if size > limits.file_bytes:
            raise UserDataError(413, f"The file is larger than {limits.file_bytes // (1024 * 1024)} MB.")
        files = [p for p in self.root.rglob("*") if p.is_file() and p != path] if self.root.is_dir() else []
        if len(files) >= limits.user_files:
            raise UserDataError(413, f"A user may keep at most {limits.user_files} files.")
        if sum(p.stat().st_size for p in files) + size > limits.user_bytes:
            raise UserDataError(413, f"A user may keep at most {limits.user_bytes // (1024 * 1024)} MB of files.")

    # --- settings ---

    def settings(self) -> JSONObject:
        """The frontend's settings (``{}`` when none are saved, or the file is not an object)."""
        path = self.root / SETTINGS_FILE
        try:
            found = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return {}
        return found if isinstance(found, dict) else {}

    def update_settings(self, changes: JSONObject) -> None:
        merged = {**self.settings(), **changes}
        self.write(SETTINGS_FILE, json.dumps(merged, indent=4).encode(), overwrite=True)


def write_bytes_atomic(path: Path, data: bytes, scratch: Path) -> None:
    """Write to a file in ``scratch`` (same disk, outside every user's folder), then rename."""
    scratch.mkdir(parents=True, exist_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = scratch / f"{uuid.uuid4().hex}.partial"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
