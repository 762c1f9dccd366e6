"""Files through the pool: ``/view`` from the backend that holds the file, ``/upload/image`` to
every backend that may run a prompt using it."""

from __future__ import annotations

import asyncio
import mimetypes
from typing import TYPE_CHECKING, Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from swarmkeeper.clients.errors import ComfyError, ComfyRequestError
from swarmkeeper.dispatch.pool.files import safe_filename, safe_subfolder
from swarmkeeper.dispatch.pool.info import running_targets
from swarmkeeper.dispatch.targets import Target

if TYPE_CHECKING:
    from swarmkeeper.dispatch.pool.core import Pool

FOLDER_TYPES = ("output", "input", "temp")
#: The first bytes of the image formats ComfyUI's LoadImage reads.
IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")


def looks_like_image(data: bytes) -> bool:
    return data.startswith(IMAGE_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def media_type(filename: str, preview: str | None) -> str:
    if preview:
        return f"image/{preview.split(';')[0].strip().lower() or 'webp'}"
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


async def fetch(target: Target, params: dict[str, str]) -> Response | None:
    """One backend's /view answer; None when it does not have the file (or cannot be asked)."""
    extra = {key: value for key, value in params.items() if key not in ("filename", "subfolder", "type")}
    try:
        raw = await target.client().view(params["filename"], params.get("subfolder", ""),
                                         params.get("type", "output") or "output", extra)
    except (ComfyError, RuntimeError):
        return None
    headers = {"Content-Disposition": f'filename="{params["filename"]}"'}
    return Response(raw, media_type=media_type(params["filename"], params.get("preview")), headers=headers)


async def view(pool: Pool, request: Request, pin: int | None) -> Response:
    """``GET /view``: ComfyUI's checks first (nothing is asked of a backend for a bad path)."""
    query = dict(request.query_params)
    filename, subfolder = query.get("filename", ""), query.get("subfolder", "")
    kind = query.get("type", "output") or "output"
    if not filename:
        return Response(status_code=404)
    if not safe_filename(filename):
        return Response(status_code=400)
    if not safe_subfolder(subfolder):
        return Response(status_code=403)
    if kind not in FOLDER_TYPES:
        return Response(status_code=400)
    located = pool.files.locate(kind, subfolder, filename)
    targets = running_targets(pool, pin)
    if located is not None:
        owner = [t for t in targets if t.record.id == located.backend_id]
        answer = await fetch(owner[0], {**query, "filename": located.real_name}) if owner else None
        if answer is not None:
            return answer
    for answer in await asyncio.gather(*(fetch(target, query) for target in targets)):
        if answer is not None:
            return answer
    return Response(status_code=404)


async def upload(pool: Pool, request: Request, pin: int | None) -> Response:
    """``POST /upload/image``: stored on the first backend, then under the same name on the others."""
    try:
        form = await request.form(max_files=1, max_fields=20)
    except Exception:  # a body that is not multipart form data: ComfyUI answers 400
        return Response(status_code=400)
    image = form.get("image")
    if not isinstance(image, UploadFile):
        return Response(status_code=400)
    data = await image.read()
    name = (image.filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    subfolder = str(form.get("subfolder") or "")
    kind = str(form.get("type") or "input")
    if not name or not safe_filename(name) or not safe_subfolder(subfolder) or kind not in FOLDER_TYPES:
        return Response(status_code=400)
    if not looks_like_image(data):
        return Response("The uploaded file is not an image (PNG, JPEG, WEBP, GIF, BMP or TIFF).", status_code=400)
    overwrite = str(form.get("overwrite", "")).lower() in ("true", "1")
    targets = running_targets(pool, pin)
    if not targets:
        return Response("No backend is running to store the upload.", status_code=503)
    return await _store_everywhere(targets, data, name, subfolder=subfolder, kind=kind, overwrite=overwrite)


async def _store_everywhere(targets: list[Target], data: bytes, name: str, **where: Any) -> Response:
    from swarmkeeper.dispatch.pool.routes import ComfyJSON

    first: dict[str, Any] | None = None
    for target in targets:
        try:
            stored = await target.client().upload_image(data, name if first is None else first["name"],
                                                        subfolder=where["subfolder"], type=where["kind"],
                                                        overwrite=where["overwrite"] if first is None else True)
        except ComfyRequestError as error:
            if first is None:
                return Response(status_code=error.status if 400 <= error.status < 500 else 502)
            continue
        except (ComfyError, RuntimeError):
            continue
        first = first or stored
    if first is None:
        return Response("No backend could store the upload.", status_code=502)
    return ComfyJSON(first)
