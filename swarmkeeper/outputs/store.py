"""Saved outputs on disk: one folder per user under ``<data_dir>/Output``. An image's file is
created exclusively (``O_EXCL``), so two requests never share a name and nothing is overwritten; its
View path is answered only once the file is whole."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from swarmkeeper.outputs.paths import IMAGE_TYPES, BadPath, check_user_id, output_path, relative_parts, view_url

#: Names tried before giving up (``-1``, ``-2``, ... as SwarmUI appends).
MAX_TRIES = 1000


@dataclass(frozen=True)
class Found:
    """A saved image to serve."""

    path: Path
    media_type: str


def write_new(path: Path, data: bytes) -> None:
    """Create ``path`` (FileExistsError if it is there) and write it whole, or leave nothing."""
    with open(path, "xb") as file:
        try:
            file.write(data)
        except BaseException:
            path.unlink(missing_ok=True)
            raise


class OutputStore:
    """The ``Output`` folder (SwarmUI's OutputPath, with the user name appended)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def save(self, user_id: str, data: bytes, extension: str, *, index: int, prompt: str, model: str,
             now: datetime | None = None) -> str:
        """Save image ``index`` of a request; its ``View/<user>/...`` path. Raises BadPath for an
        unusable user id."""
        folder = self.root / check_user_id(user_id)
        base = output_path(now or datetime.now(), index, prompt, model)
        (folder / base).parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(MAX_TRIES):
            relative = f"{base}{f'-{attempt}' if attempt else ''}.{extension}"
            try:
                write_new(folder / relative, data)
            except FileExistsError:
                continue
            return view_url(user_id, relative)
        raise FileExistsError(f"no free name for {base}")

    def find(self, user_id: str, path: str) -> Found | None:
        """The image a View path names, or None when there is no such image. Raises BadPath for a
        path that would leave the user's folder (``..``, a link pointing out)."""
        folder = (self.root / check_user_id(user_id)).resolve()
        parts = relative_parts(path)
        media_type = IMAGE_TYPES.get(parts[-1].rsplit(".", 1)[-1].lower()) if "." in parts[-1] else None
        if media_type is None:
            return None
        target = folder.joinpath(*parts).resolve()
        if not target.is_relative_to(folder):
            raise BadPath(f"path {path!r} resolves outside {folder}")
        return Found(target, media_type) if target.is_file() else None
