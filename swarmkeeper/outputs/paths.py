"""Where an image goes, as SwarmUI names it (pure: no I/O).

SwarmUI's default ``OutPathBuilder`` format is
``raw/[year]-[month]-[day]/[hour][minute][request_time_inc]-[prompt]-[model]``, each part cut to 40
characters (``request_time_inc`` here is the image's index in its request); the web path is
``View/<user>/<that path>.<extension>``, with ``-1``, ``-2``... added when the name is taken.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import PurePosixPath

#: SwarmUI's OutPathBuilder.MaxLenPerPart.
MAX_PART = 40
#: The image types the View route serves, by extension.
IMAGE_TYPES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp",
               "gif": "image/gif"}
#: The file extension an image is saved under, by media type.
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}
_UNSAFE = re.compile(r"[^A-Za-z0-9 _.,()\-]+")
_USER_ID = re.compile(r"[a-z0-9_][a-z0-9_.\-]{0,99}")


class BadPath(ValueError):
    """A path or user id that would leave the output folder."""


def clean_part(text: str) -> str:
    """One path part from free text (a prompt, a model name): only plain characters, no dots at the
    ends (so never ``..``), at most MAX_PART characters."""
    cleaned = " ".join(_UNSAFE.sub("", text.replace("/", " ").replace("\\", " ")).split())
    return cleaned.strip(" .")[:MAX_PART].strip(" .") or "none"


def model_part(model: str) -> str:
    """The model as the file name shows it: its file name without folder and extension."""
    name = model.replace("\\", "/").rsplit("/", 1)[-1]
    return clean_part(name.rsplit(".", 1)[0] if "." in name else name)


def output_path(now: datetime, counter: int, prompt: str, model: str) -> str:
    """The path of one image under the user's folder, without extension."""
    day = now.strftime("%Y-%m-%d")
    return f"raw/{day}/{now.strftime('%H%M')}{counter}-{clean_part(prompt)}-{model_part(model)}"


def check_user_id(user_id: str) -> str:
    """A user id usable as a folder name (SwarmUI's ids are lower-case letters, digits, ``_``)."""
    if not _USER_ID.fullmatch(user_id) or ".." in user_id:
        raise BadPath(f"user id {user_id!r} cannot name an output folder")
    return user_id


def relative_parts(path: str) -> tuple[str, ...]:
    """A requested path as safe parts: no empty, ``.`` or ``..`` part, no absolute path, no NUL."""
    if "\x00" in path:
        raise BadPath("NUL in path")
    parts = PurePosixPath(path.replace("\\", "/")).parts
    if not parts or parts[0] == "/" or any(part in ("", ".", "..") for part in parts):
        raise BadPath(f"path {path!r} leaves its folder")
    return parts


def view_url(user_id: str, relative: str) -> str:
    """SwarmUI's answer for a saved image: ``View/<user>/<path>``."""
    return f"View/{user_id}/{relative}"
